"""Thin tasks: take an id, claim the owed row, call the one service its kind names
(provisioning.services.JOBS).

A stage that owes the platform's next stage at once, or queues an email, has that work
run next by the same task rather than sent as a task of its own (outbox.owed.kept_here):
the delivery and its email, DNS Assist and its first check, the certificate order and its
validation email, finalisation and the ready email. Each is claimed through the outbox
like any job or email, so a worker that dies in the middle of one leaves exactly what a
task of its own would: a leased row the sweep gives back, or a row it sends again."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from notifications.models import Email
from notifications.services import email_send
from outbox import owed
from outbox.errors import PortalError
from outbox.models import OwedWork
from provisioning import services
from provisioning.models import Job
from provisioning.services import JOBS
from provisioning.services.common import Stage

logger = logging.getLogger(__name__)

# Work run next by the task that owed it, at most this many rows after its own job (the
# longest chain: certificate order, DNS-01 by DNS Assist, finalisation, ready email).
RUN_HERE_MAX = 4


@shared_task(name=Job.task_name)
def run_job(job_id: int) -> None:
    job = _claim(job_id)
    if job is None:
        return  # done, taken by another worker, or not due: a duplicate delivery
    platform_id = job.platform_id

    def runs_here(row: OwedWork) -> bool:
        return isinstance(row, Email) or (isinstance(row, Job) and row.platform_id == platform_id)

    with owed.kept_here(runs_here) as kept:
        _run(job)
        for _ in range(RUN_HERE_MAX):
            if not kept:
                break
            row = kept.pop(0)
            if isinstance(row, Email):
                email_send(email_id=row.pk)
            elif (job := _claim(row.pk)) is not None:
                _run(job)


def _claim(job_id: int) -> Job | None:
    return owed.claim(Job, job_id, lease_seconds=settings.JOB_LEASE_SECONDS)


def _run(job: Job) -> None:
    """Run the claimed job's stage and record how it went on its row."""
    stage = JOBS[job.kind]
    try:
        result = stage.run(platform_id=job.platform_id)
    except PortalError as error:
        _failed(job, stage, error.message, transient=error.transient)
    except Exception as error:
        logger.exception("Job %s (%s) failed", job.pk, job.kind)
        _failed(job, stage, f"{type(error).__name__}: {error}", transient=True)
    else:
        if isinstance(result, owed.Later):
            owed.reschedule(job, result.at)
        else:
            owed.finish(job, last_error="")


def _failed(job: Job, stage: Stage, error: str, *, transient: bool) -> None:
    if transient and owed.retry_later(job, error, max_attempts=settings.JOB_MAX_ATTEMPTS):
        return
    if not transient:
        owed.give_up(job, error)
    reason = f"{job.get_kind_display()} failed: {error}"
    if transient:
        reason = f"{job.get_kind_display()} failed after {job.attempts} attempts: {error}"
    stage.give_up(platform_id=job.platform_id, reason=reason)


@shared_task(name="provisioning.tasks.dispatch_due_jobs")
def dispatch_due_jobs() -> int:
    return owed.dispatch_due(Job)


@shared_task(name="provisioning.tasks.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    return services.ordering.idempotency_keys_purge(
        older_than=timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL)
    )
