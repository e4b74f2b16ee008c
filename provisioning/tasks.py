"""Thin tasks: take an id, claim the owed row, call one service."""

import logging

from celery import shared_task
from django.conf import settings

from notifications import outbox
from provisioning import services
from provisioning.models import Job

logger = logging.getLogger(__name__)


class PermanentFailure(Exception):
    """A stage that cannot succeed by being retried: the platform fails at once."""


@shared_task(name="provisioning.tasks.run_job")
def run_job(job_id: int) -> None:
    job = outbox.claim(Job, job_id, lease_seconds=settings.JOB_LEASE_SECONDS)
    if job is None:
        return  # done, taken by another worker, or not due: a duplicate delivery
    handler = services.JOB_HANDLERS[job.kind]
    try:
        handler(platform_id=job.platform_id)
    except PermanentFailure as error:
        outbox.give_up(job, str(error))
        services.platform_fail(platform_id=job.platform_id, reason=str(error))
    except Exception as error:
        logger.exception("Job %s (%s) failed", job.pk, job.kind)
        detail = f"{type(error).__name__}: {error}"
        if not outbox.retry_later(job, detail, max_attempts=settings.JOB_MAX_ATTEMPTS):
            services.platform_fail(
                platform_id=job.platform_id,
                reason=f"{job.get_kind_display()} failed after {job.attempts} attempts: {detail}",
            )
    else:
        outbox.finish(job, last_error="")


@shared_task(name="provisioning.tasks.dispatch_due_jobs")
def dispatch_due_jobs() -> int:
    ids = outbox.take_due(Job)
    for job_id in ids:
        run_job.delay(job_id)
    return len(ids)
