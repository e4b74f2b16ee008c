"""Thin tasks: take an id, claim the owed row, call the one service its kind names
(provisioning.services.JOBS)."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from outbox import owed
from outbox.errors import PortalError
from provisioning import services
from provisioning.models import Job
from provisioning.services import JOBS
from provisioning.services.common import Stage

logger = logging.getLogger(__name__)


@shared_task(name=Job.task_name)
def run_job(job_id: int) -> None:
    job = owed.claim(Job, job_id, lease_seconds=settings.JOB_LEASE_SECONDS)
    if job is None:
        return  # done, taken by another worker, or not due: a duplicate delivery
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
