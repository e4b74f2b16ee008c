"""Thin tasks: take an id, claim the owed row, call one service."""

import logging
from dataclasses import dataclass
from datetime import datetime

from celery import shared_task
from django.conf import settings

from outbox import owed
from provisioning import services
from provisioning.models import Job, JobKind

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """What a job runs, and what giving up on it means for the platform. A handler may
    return a datetime: the job is then rescheduled (a check to repeat), not finished."""

    run: callable
    give_up: callable = services.platform_fail


STAGES = {
    JobKind.DELIVER: Stage(services.platform_deliver),
    JobKind.DNS_ASSIST: Stage(services.platform_dns_assist, services.platform_dns_assist_failed),
    JobKind.DNS_CHECK: Stage(services.platform_dns_check, services.platform_dns_assist_failed),
    JobKind.CERTIFICATE: Stage(services.platform_certificate_request),
    JobKind.ACME_DNS: Stage(services.platform_acme_dns),
    JobKind.ACME_MANUAL: Stage(services.platform_acme_manual),
    JobKind.FINALISE: Stage(services.platform_make_ready),
}


@shared_task(name=Job.task_name)
def run_job(job_id: int) -> None:
    job = owed.claim(Job, job_id, lease_seconds=settings.JOB_LEASE_SECONDS)
    if job is None:
        return  # done, taken by another worker, or not due: a duplicate delivery
    stage = STAGES[job.kind]
    try:
        again_at = stage.run(platform_id=job.platform_id)
    except services.StageError as error:
        _failed(job, stage, error.message, transient=error.transient)
    except Exception as error:
        logger.exception("Job %s (%s) failed", job.pk, job.kind)
        _failed(job, stage, f"{type(error).__name__}: {error}", transient=True)
    else:
        if isinstance(again_at, datetime):
            owed.reschedule(job, again_at)
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
