"""Owed work: the vocabulary callers use, and the machinery tasks and beat's sweep use.

A row is written in the transaction that makes the work owed. After commit, its task is
sent to the broker; beat's sweep sends it again when the message was lost (broker down)
or the worker died holding it (its lease ran out). A task first *claims* its row with a
conditional UPDATE, so a duplicate delivery finds nothing to do.

Callers say what they owe (``owe``, ``owe_once``), what is no longer owed (``cancel_open``,
``fulfil``), what must not wait (``run_now``) and ask ``is_owed``; they never write a
status themselves. Tasks are sent by the name the row's model gives (``task_name``). A task
may run the work it made due itself, next, instead of sending it (``kept_here``).
"""

import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Least
from django.utils import timezone

from outbox.models import OPEN_STATUSES, OwedStatus, OwedWork

logger = logging.getLogger(__name__)

SWEEP_BATCH_SIZE = 200
# Copies of a row that waits in a backlog are at most this many OUTBOX_REDISPATCH_AFTER apart.
REDISPATCH_SPACING_MAX = 16


@dataclass(frozen=True)
class Later:
    """What a handler returns when its work is not over but has nothing more to do before
    ``at`` (a check to repeat): the row is rescheduled, not finished, not failed."""

    at: datetime


# The vocabulary of callers.


def owe(row: OwedWork) -> OwedWork:
    """Insert a new owed row; when it is due now, send its task once the transaction
    commits. It goes in already marked as dispatched, so no UPDATE follows the INSERT."""
    now = timezone.now()
    due = row.due_at <= now
    if due:
        row.dispatched_at = now
    row.save(force_insert=True)
    if due:
        _send_on_commit(row)
    return row


def is_owed(rows: QuerySet) -> bool:
    """Whether any of these rows is still owed (waiting or running)."""
    return rows.filter(status__in=OPEN_STATUSES).exists()


def owe_once(row: OwedWork, *, among: QuerySet) -> OwedWork | None:
    """Owe the row unless one of `among` (the same work) is owed already."""
    if is_owed(among):
        return None
    return owe(row)


def cancel_open(rows: QuerySet, *, reason: str) -> int:
    """What is still owed among these rows will not be done: failed, with the reason."""
    return rows.filter(status__in=OPEN_STATUSES).update(
        status=OwedStatus.FAILED, last_error=reason, finished_at=timezone.now(), lease_until=None
    )


def fulfil(rows: QuerySet) -> int:
    """The work these waiting rows owe was done another way (a person asked for it):
    they are done without running."""
    return rows.filter(status=OwedStatus.PENDING).update(
        status=OwedStatus.DONE, finished_at=timezone.now(), dispatched_at=None
    )


def run_now(rows: QuerySet) -> list[OwedWork]:
    """Waiting rows made due now, their attempts counted afresh (a person's retry of work
    waiting out its backoff); sent once the transaction commits."""
    return _run_now(list(rows.filter(status=OwedStatus.PENDING)))


def owe_now(row: OwedWork, *, among: QuerySet) -> None:
    """The work is wanted now: what of `among` (the same work) waits is made due now
    (``run_now``); when none of it is owed, the row is (``owe``); one running does it. One
    read of `among` for both questions."""
    owed_rows = list(among.filter(status__in=OPEN_STATUSES))
    if not owed_rows:
        owe(row)
    else:
        _run_now([r for r in owed_rows if r.status == OwedStatus.PENDING])


def _run_now(waiting: list[OwedWork]) -> list[OwedWork]:
    now = timezone.now()
    for row in waiting:
        type(row).objects.filter(pk=row.pk).update(due_at=now, attempts=0, dispatched_at=now)
        row.due_at, row.attempts, row.dispatched_at = now, 0, now
        _send_on_commit(row)
    return waiting


# The machinery of tasks and sweeps.


def claim(model: type[OwedWork], pk: int, *, lease_seconds: int) -> OwedWork | None:
    """Take the row for this worker, or return None when it is not (or no longer) owed."""
    # One statement, the conditional UPDATE returning the row it took (PostgreSQL, and
    # SQLite since 3.35): the ORM's update() returns a count, and a SELECT after it was one
    # more round trip for every job and every email.
    now = timezone.now()
    name, ops = connection.ops.quote_name, connection.ops
    columns = ", ".join(name(field.column) for field in model._meta.concrete_fields)
    sql = (
        f"UPDATE {name(model._meta.db_table)} "  # noqa: S608 (quoted names, values as parameters)
        f"SET {name('status')} = %s, {name('lease_until')} = %s, "
        f"{name('attempts')} = {name('attempts')} + 1 "
        f"WHERE {name(model._meta.pk.column)} = %s AND {name('status')} = %s "
        f"AND {name('due_at')} <= %s RETURNING {columns}"
    )
    lease_until = now + timedelta(seconds=lease_seconds)
    params = [
        OwedStatus.RUNNING.value,
        ops.adapt_datetimefield_value(lease_until),
        pk,
        OwedStatus.PENDING.value,
        ops.adapt_datetimefield_value(now),
    ]
    taken = list(model.objects.raw(sql, params))
    return taken[0] if taken else None


def finish(row: OwedWork, **fields) -> None:
    """Mark the claimed row done (with any result fields)."""
    fields.update(status=OwedStatus.DONE, finished_at=timezone.now(), lease_until=None)
    type(row).objects.filter(pk=row.pk, status=OwedStatus.RUNNING).update(**fields)


def reschedule(row: OwedWork, due_at: datetime) -> None:
    """The claimed work is not over but has nothing more to do before due_at (a DNS check
    to repeat later): back to pending, not counted as a failed attempt."""
    type(row).objects.filter(pk=row.pk, status=OwedStatus.RUNNING).update(
        status=OwedStatus.PENDING,
        due_at=due_at,
        attempts=0,
        dispatched_at=None,
        lease_until=None,
        last_error="",
    )


def give_up(row: OwedWork, error: str) -> None:
    type(row).objects.filter(pk=row.pk).update(
        status=OwedStatus.FAILED,
        last_error=error,
        finished_at=timezone.now(),
        lease_until=None,
    )


def backoff_delay(attempts: int) -> float:
    """Exponential backoff with jitter, in seconds, for the attempt that just failed."""
    base = settings.RETRY_BACKOFF_BASE * (2 ** max(attempts - 1, 0))
    return min(base, settings.RETRY_BACKOFF_MAX) * random.uniform(0.8, 1.2)


def retry_later(row: OwedWork, error: str, *, max_attempts: int) -> bool:
    """Put a transiently failed row back with backoff; give up after max_attempts.
    Returns True when it will be retried."""
    if row.attempts >= max_attempts:
        give_up(row, error)
        return False
    type(row).objects.filter(pk=row.pk).update(
        status=OwedStatus.PENDING,
        last_error=error,
        due_at=timezone.now() + timedelta(seconds=backoff_delay(row.attempts)),
        dispatched_at=None,
        lease_until=None,
    )
    return True


def take_due(model: type[OwedWork], *, limit: int = SWEEP_BATCH_SIZE) -> list[int]:
    """Ids of rows owed now whose task is not known to be on its way; marks them dispatched.

    Rows whose worker died (lease expired) are put back first. A row sent but not started
    after OUTBOX_REDISPATCH_AFTER (R) is presumed lost and sent again. While it keeps
    waiting (a queue behind rather than a lost message) the copies are spaced out: the next
    one no sooner than the last was after the row came due (R, 2R, 4R... up to
    REDISPATCH_SPACING_MAX times R apart), not every R, which would feed the very backlog
    they wait in. On PostgreSQL two sweepers skip each other's rows; elsewhere a double
    dispatch is harmless (claim() decides)."""
    now = timezone.now()
    redispatch_after = timedelta(seconds=settings.OUTBOX_REDISPATCH_AFTER)
    lost_before = now - redispatch_after
    model.objects.filter(status=OwedStatus.RUNNING, lease_until__lt=now).update(
        status=OwedStatus.PENDING, lease_until=None, dispatched_at=None
    )
    with transaction.atomic():
        due = (
            model.objects.alias(
                resend_at=F("dispatched_at")
                + Least(
                    F("dispatched_at") - F("due_at"),
                    Value(redispatch_after * REDISPATCH_SPACING_MAX),
                )
            )
            .filter(
                Q(dispatched_at__isnull=True)
                | Q(dispatched_at__lt=lost_before, resend_at__lte=now),
                status=OwedStatus.PENDING,
                due_at__lte=now,
            )
            .order_by("due_at")
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        model.objects.filter(pk__in=ids).update(dispatched_at=now)
    return ids


def dispatch_due(model: type[OwedWork]) -> int:
    """Beat's sweep of one kind of owed work: send the task of every row due now."""
    ids = take_due(model)
    for pk in ids:
        _send(model.task_name, pk)
    return len(ids)


def _send(task_name: str, pk: int) -> None:
    # By name: the registered task when this process knows it (eager in tests), else a
    # message for the workers that do.
    current_app.signature(task_name, args=(pk,)).delay()


def _send_on_commit(row: OwedWork) -> None:
    """Send the row's task once the transaction commits (or keep it for the task that owed
    it: ``kept_here``)."""

    def send() -> None:
        kept = _kept.get()
        if kept is not None and kept.accept(row):
            kept.rows.append(row)
        else:
            _send_or_leave(row)

    transaction.on_commit(send)


def _send_or_leave(row: OwedWork) -> None:
    """Send the row's task. If the broker cannot take it, the row is left for the next
    sweep instead of failing the request that made it owed."""
    model = type(row)
    try:
        _send(model.task_name, row.pk)
    except Exception:
        logger.warning("Broker unavailable; %s %s left for the sweep", model.__name__, row.pk)
        model.objects.filter(pk=row.pk).update(dispatched_at=None)


# Work a task runs itself, next, instead of sending it.


@dataclass
class _Kept:
    accept: Callable[[OwedWork], bool]
    rows: list[OwedWork] = field(default_factory=list)


_kept: ContextVar[_Kept | None] = ContextVar("outbox_kept", default=None)


@contextmanager
def kept_here(accept: Callable[[OwedWork], bool]) -> Iterator[list[OwedWork]]:
    """Within the block, a row made due now that `accept` takes is not sent to the broker
    when its transaction commits: it is appended to the list the block gets, for the task
    that made it owed to claim (``claim``, as its own task would) and run next, sparing a
    message and a task. Nothing else changes: the row went in marked as dispatched like any
    other, so if that task dies before it claims the row the sweep sends it again after
    OUTBOX_REDISPATCH_AFTER, as it would a lost message; once claimed, it is leased and
    redone after a death like any claimed row. Rows left in the list when the block ends
    (the task gave up on them) are sent then."""
    kept = _Kept(accept)
    token = _kept.set(kept)
    try:
        yield kept.rows
    finally:
        _kept.reset(token)
        for row in kept.rows:
            _send_or_leave(row)
        kept.rows.clear()
