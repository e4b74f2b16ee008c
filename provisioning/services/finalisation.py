"""Step 5 of the guide, finalisation: up to FINALISATION_DELAY during which the customer
does not see the platform, then the ready email (which warns when DNS is not right yet)."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from outbox.owed import Later
from provisioning import links
from provisioning.models import DnsState, JobKind, Platform, PlatformState
from provisioning.services.common import SYSTEM, Stage, locked, moved, owe_job, queue_platform_email
from provisioning.services.dns import expected_records
from webhooks.models import EventType
from webhooks.services import webhook_event_owe


def platform_finalise(platform: Platform) -> None:
    """Certificate issued → finalising, its end owed (in the caller's transaction)."""
    due_at = timezone.now() + timedelta(seconds=settings.FINALISATION_DELAY)
    platform.finalise(due_at=due_at)
    moved(platform, SYSTEM, f"Ready at {due_at:%Y-%m-%d %H:%M} UTC at the latest.")
    owe_job(platform, JobKind.FINALISE, due_at=due_at)


def ready_email_context(platform: Platform) -> dict:
    verified = platform.dns_state == DnsState.VERIFIED
    return {
        "missing_records": []
        if verified
        else [r for r in platform.dns_records if r["status"] != "ok"],
        "dns_verified": verified,
        "expected_records": expected_records(platform),
        "certificate": platform.certificate,
        "home_url": settings.PORTAL_BASE_URL + "/",
        "domains_url": links.domains_url(platform),
    }


@transaction.atomic
def platform_make_ready(*, platform_id: int) -> Later | None:
    """Finalisation over: the platform is ready and the ready email goes out."""
    platform = locked(platform_id, account=False)
    if platform.state != PlatformState.FINALISING:
        return None
    if platform.due_at and platform.due_at > timezone.now():
        return Later(platform.due_at)
    platform.make_ready()
    moved(platform, SYSTEM, "Finalisation complete.")
    queue_platform_email(platform, "ready", context=ready_email_context(platform))
    webhook_event_owe(platform, EventType.READY, server_name=platform.server_name)
    return None


JOBS = {JobKind.FINALISE: Stage(platform_make_ready)}
EMAILS = {"ready": ready_email_context}
