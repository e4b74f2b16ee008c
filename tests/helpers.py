"""Runs the owed work in the test process, the way a worker would, until none is due."""

from django.utils import timezone

from notifications.models import Email
from notifications.tasks import send_email
from provisioning.models import Job, Platform
from provisioning.services import platform_configure, platform_order
from provisioning.tasks import run_job


def work_off(max_rounds: int = 50) -> None:
    for _ in range(max_rounds):
        now = timezone.now()
        jobs = _due_ids(Job, now)
        emails = _due_ids(Email, now)
        if not jobs and not emails:
            return
        for job_id in jobs:
            run_job(job_id)
        for email_id in emails:
            send_email(email_id)
    raise AssertionError("work still owed after many rounds")


def delivered_platform(account) -> Platform:
    """A platform ordered for the account and delivered (awaiting setup)."""
    platform = platform_order(account=account, actor="test")
    work_off()
    platform.refresh_from_db()
    return platform


def _due_ids(model, now) -> list[int]:
    return list(
        model.objects.filter(status="pending", due_at__lte=now).values_list("pk", flat=True)
    )


def validating_platform(account, *, domain: str) -> Platform:
    """A platform delivered and set up without DNS Assist (admin@domain validates), its
    owed work done: it waits for its validation code."""
    platform = delivered_platform(account)
    platform_configure(
        platform_id=platform.pk,
        actor="test",
        subdomain="mail",
        domain=domain,
        validation_email=f"admin@{domain}",
        dns_assist=False,
    )
    work_off()
    platform.refresh_from_db()
    return platform
