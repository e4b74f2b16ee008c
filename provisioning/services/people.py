"""What people do to a platform besides the guide's steps: an operator's retry or
cancellation, a resend asked by support staff or an operator."""

from django.db import transaction
from django_fsm import can_proceed

from outbox import owed
from provisioning.errors import NotAllowed
from provisioning.models import Platform, PlatformState
from provisioning.rules import RESENDABLE_KINDS
from provisioning.services import dns, finalisation, ordering
from provisioning.services.certificate import platform_dcv_resend
from provisioning.services.common import (
    first_email,
    locked,
    moved,
    owe_job_once,
    queue_platform_email,
    record,
)

# What the templates of each resendable email show, built anew; the validation email is
# resent with a new code (certificate.platform_dcv_resend).
EMAIL_CONTEXTS = {**ordering.EMAILS, **dns.EMAILS, **finalisation.EMAILS}


@transaction.atomic
def platform_retry(*, platform_id: int, actor: str) -> Platform:
    """The operator's retry: a failed platform goes back to the stage that failed; a stage
    still waiting out its backoff (stuck) runs now. Either way its job is owed, due now."""
    platform = locked(platform_id)
    was_failed = platform.state == PlatformState.FAILED
    if was_failed:
        platform.resume()
        moved(platform, actor, "Retried by an operator.")
    stage_job = platform.state_info.job_for(platform)
    if stage_job is None and was_failed:
        return platform  # back to waiting for the customer
    if stage_job is None:
        raise NotAllowed(
            f"Nothing to retry in state {platform.get_state_display().lower()}: "
            "the customer has to act (the emails can be resent)."
        )
    waiting = owed.run_now(platform.jobs.filter(kind=stage_job))
    if not waiting:
        owe_job_once(platform, stage_job)
        return platform
    record(platform, "retried", actor, f"{waiting[0].get_kind_display()} run now.")
    return platform


@transaction.atomic
def platform_cancel(*, platform_id: int, actor: str) -> Platform:
    platform = locked(platform_id)
    if not can_proceed(platform.cancel):
        state = platform.get_state_display().lower()
        raise NotAllowed(f"A platform in state {state} cannot be cancelled.")
    platform.cancel()
    moved(platform, actor, "Cancelled.")
    owed.cancel_open(platform.jobs.all(), reason="Platform cancelled")
    return platform


@transaction.atomic
def platform_email_resend(
    *, platform_id: int, kind: str, actor: str, address: str | None = None
) -> None:
    """Send a service email again, rendered anew (a fresh link; for validation, a new code,
    to `address` when it is another of the offered ones)."""
    if kind == "dcv":
        platform_dcv_resend(platform_id=platform_id, actor=actor, address=address)
        return
    platform = locked(platform_id)
    original = first_email(platform, kind)
    if kind not in RESENDABLE_KINDS or original is None:
        raise NotAllowed(f"No {kind} email was sent for {platform.service}.")
    queue_platform_email(
        platform,
        kind,
        context=EMAIL_CONTEXTS[kind](platform),
        recipient=original.recipient,
        resend_of=original,
        actor=actor,
    )
