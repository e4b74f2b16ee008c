"""Owed work kept in the database (the outbox pattern), shared by emails and platform jobs.

A row is written in the transaction that makes the work owed. After commit, its task is
sent to the broker; beat's sweep sends it again when the message was lost (broker down)
or the worker died holding it (its lease ran out). A task first *claims* its row with a
conditional UPDATE, so a duplicate delivery finds nothing to do.
"""

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Least
from django.utils import timezone

logger = logging.getLogger(__name__)

SWEEP_BATCH_SIZE = 200
# Copies of a row that waits in a backlog are at most this many OUTBOX_REDISPATCH_AFTER apart.
REDISPATCH_SPACING_MAX = 16


class OwedStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "In progress"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class OwedWork(models.Model):
    status = models.CharField(max_length=10, choices=OwedStatus.choices, default=OwedStatus.PENDING)
    due_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


def claim(model: type[OwedWork], pk: int, *, lease_seconds: int) -> OwedWork | None:
    """Take the row for this worker, or return None when it is not (or no longer) owed."""
    now = timezone.now()
    taken = model.objects.filter(pk=pk, status=OwedStatus.PENDING, due_at__lte=now).update(
        status=OwedStatus.RUNNING,
        lease_until=now + timedelta(seconds=lease_seconds),
        attempts=models.F("attempts") + 1,
    )
    if not taken:
        return None
    return model.objects.get(pk=pk)


def finish(row: OwedWork, **fields) -> None:
    """Mark the claimed row done (with any result fields)."""
    fields.update(status=OwedStatus.DONE, finished_at=timezone.now(), lease_until=None)
    type(row).objects.filter(pk=row.pk, status=OwedStatus.RUNNING).update(**fields)


def reschedule(row: OwedWork, due_at) -> None:
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


def owe(task, row: OwedWork) -> None:
    """Insert a new owed row; when it is due now, send its task once the transaction
    commits. It goes in already marked as dispatched, so no UPDATE follows the INSERT."""
    now = timezone.now()
    due = row.due_at <= now
    if due:
        row.dispatched_at = now
    row.save(force_insert=True)
    if due:
        _send_on_commit(task, row)


def dispatch_on_commit(task, row: OwedWork) -> None:
    """Send the task of a row already saved once the transaction commits, when the row is
    due now.

    If the broker cannot take it, the row is left for the next sweep instead of failing
    the request that made it owed."""
    if row.due_at > timezone.now():
        return
    type(row).objects.filter(pk=row.pk).update(dispatched_at=timezone.now())
    _send_on_commit(task, row)


def _send_on_commit(task, row: OwedWork) -> None:
    model = type(row)

    def send() -> None:
        try:
            task.delay(row.pk)
        except Exception:
            logger.warning("Broker unavailable; %s %s left for the sweep", model.__name__, row.pk)
            model.objects.filter(pk=row.pk).update(dispatched_at=None)

    transaction.on_commit(send)
