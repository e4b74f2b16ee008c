"""After the guide: the billing system's suspension (and resumption) and termination.

A suspension holds the platform where it stands: nothing is deleted, the customer sees it
suspended and why, and nothing of the guide moves on (its jobs are cancelled, owed again on
resumption). A termination, from any state, is owed work that survives faults: the
TERMINATION_STEPS below run in order in one job, each safe to run again after a fault
(it does nothing the second time); the addresses go back to the pools only after
ADDRESS_QUARANTINE, through a job due then.

To add a step, write ``def _step(platform: Platform) -> str | None`` (what it did, for the
timeline, or None when there was nothing left to do) and add it to TERMINATION_STEPS.
"""

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_fsm import can_proceed

from certificates import selectors as certificate_selectors
from certificates import services as certificate_services
from certificates.models import IN_USE, CertificateOrder
from notifications.services import EmailAlreadyQueued
from outbox import owed
from provisioning.errors import NotAllowed
from provisioning.models import JobKind, Platform, PlatformState
from provisioning.selectors import certificate_history, managed_zone
from provisioning.services.common import (
    SYSTEM,
    Stage,
    locked,
    moved,
    owe_job,
    owe_job_once,
    queue_platform_email,
    record,
)
from provisioning.services.domains import platform_domains_release
from webhooks.models import EventType
from webhooks.services import webhook_event_owe
from zones.writers import get_writer

# RFC 5280 cessationOfOperation: the service ended, the key was not compromised.
REVOCATION_REASON = 5


@transaction.atomic
def platform_suspend(*, platform_id: int, actor: str, reason: str = "") -> Platform:
    platform = locked(platform_id)
    if platform.state == PlatformState.SUSPENDED:
        return platform  # the billing system's retry
    if not can_proceed(platform.suspend):
        raise NotAllowed(
            f"A platform in state {platform.get_state_display().lower()} cannot be suspended."
        )
    platform.suspend(reason=reason)
    moved(platform, actor, f"Suspended: {reason}" if reason else "Suspended.")
    owed.cancel_open(platform.jobs.all(), reason="Platform suspended")
    webhook_event_owe(platform, EventType.SUSPENDED, reason=reason)
    return platform


@transaction.atomic
def platform_resume(*, platform_id: int, actor: str) -> Platform:
    """Back to where it was suspended; the work of that state is owed again."""
    platform = locked(platform_id)
    if platform.state != PlatformState.SUSPENDED:
        raise NotAllowed(
            f"A platform in state {platform.get_state_display().lower()} is not suspended."
        )
    platform.unsuspend()
    moved(platform, actor, "Resumed.")
    job = platform.state_info.job_for(platform)
    if job is not None:
        owe_job_once(platform, job)
    dns_job = platform.dns_state_info.job_for(platform) if platform.server_name else None
    if dns_job is not None:
        owe_job_once(platform, dns_job)
    webhook_event_owe(platform, EventType.RESUMED)
    return platform


@transaction.atomic
def platform_terminate(*, platform_id: int, actor: str) -> Platform:
    """End the platform, whatever its state; its clean-up is owed from now on."""
    platform = locked(platform_id)
    if platform.state == PlatformState.TERMINATED:
        return platform  # the billing system's retry
    platform.terminate()
    moved(platform, actor, "Terminated.")
    owed.cancel_open(platform.jobs.all(), reason="Platform terminated")
    owe_job(platform, JobKind.TERMINATE)
    quarantine_ends = timezone.now() + timedelta(seconds=settings.ADDRESS_QUARANTINE)
    owe_job(platform, JobKind.RELEASE_ADDRESSES, due_at=quarantine_ends)
    webhook_event_owe(platform, EventType.TERMINATED)
    return platform


def _dns_records_remove(platform: Platform) -> str | None:
    """The records DNS Assist wrote, and only those: the A and AAAA of the platform's
    addresses at its server name, and the TXT of a DNS validation. A value someone else
    put beside them stays."""
    if not platform.dns_assist or not platform.server_name:
        return None
    zone = managed_zone(platform.account, platform.server_name)
    if zone is None:
        return None  # the zone left the account: the portal no longer writes there
    writer, ttl, removed = get_writer(), settings.DNS_RECORD_TTL, []
    for rtype, value in (("A", platform.ipv4), ("AAAA", platform.ipv6)):
        if value and writer.change_records(
            zone=zone.name, name=platform.server_name, rtype=rtype, ttl=ttl, remove=[value]
        ):
            removed.append(f"{rtype} {value}")
    for order in certificate_history(platform):  # a renewal's record too
        txt = certificate_selectors.dns_validation_record(order=order)
        if txt and txt.value in writer.read_records(zone=zone.name, name=txt.name, rtype="TXT"):
            writer.delete_txt(zone=zone.name, name=txt.name, value=txt.value)
            removed.append(f"TXT {txt.name}")
    return f"Removed from zone {zone.name}: {', '.join(removed)}." if removed else None


def _certificate_revoke(platform: Platform) -> str | None:
    """Every certificate of the platform still valid: the one in use, and those it replaced
    that have not ended yet."""
    revocable = [*IN_USE, CertificateOrder.Status.SUPERSEDED]
    revoked = [
        certificate_services.certificate_revoke(order_id=order.pk, reason=REVOCATION_REASON)
        for order in certificate_history(platform)
        if order.status in revocable and order.not_after > timezone.now()
    ]
    if not revoked:
        return None
    return f"Certificate {', '.join(order.serial for order in revoked)} revoked."


def _private_keys_destroy(platform: Platform) -> str | None:
    """The keys of every order: the one in use, a renewal's, those of the replaced ones."""
    destroyed = [
        order
        for order in certificate_history(platform)
        if certificate_services.certificate_key_destroy(order_id=order.pk)
    ]
    return f"{len(destroyed)} private key(s) destroyed." if destroyed else None


def _termination_email(platform: Platform) -> None:
    """Queued once (its own event tells of it); a rerun finds it queued already."""
    try:
        with transaction.atomic():
            queue_platform_email(platform, "terminated", context={})
    except EmailAlreadyQueued:
        pass


# In order: DNS first (the certificate's TXT is read before the key goes), the email last,
# once what it announces is done.
def _mail_domains_release(platform: Platform) -> str | None:
    released = platform_domains_release(platform_id=platform.pk, actor=SYSTEM)
    return (
        f"{released} mail domain(s) removed, DNS Assist's records taken back." if released else None
    )


TERMINATION_STEPS: list[Callable[[Platform], str | None]] = [
    _mail_domains_release,
    _dns_records_remove,
    _certificate_revoke,
    _private_keys_destroy,
    _termination_email,
]


def platform_termination_clean_up(*, platform_id: int) -> None:
    """The TERMINATE job: every step of TERMINATION_STEPS, each recorded when it did
    something. A fault raises (transient: the job is run again later, from the start)."""
    platform = Platform.objects.select_related("account", "certificate").get(pk=platform_id)
    if platform.state != PlatformState.TERMINATED:
        return
    for step in TERMINATION_STEPS:
        done = step(platform)
        if done:
            record(platform, "termination", "system", done)


def platform_addresses_release(*, platform_id: int) -> None:
    """The quarantine is over: the addresses go back to the pools. Until then the
    platform's row holds them, so the unique constraints keep the allocator off them."""
    with transaction.atomic():
        platform = locked(platform_id)
        if platform.state != PlatformState.TERMINATED or (
            platform.ipv4 is None and platform.ipv6 is None
        ):
            return
        released = f"Addresses {platform.ipv4} and {platform.ipv6} back to the pools."
        # updated_at too: the billing API lists orders by their last change.
        Platform.objects.filter(pk=platform.pk).update(
            ipv4=None, ipv6=None, updated_at=timezone.now()
        )
        record(platform, "addresses_released", "system", released)


def _termination_gave_up(*, platform_id: int, reason: str) -> None:
    """A step kept failing: the job is failed (admin shows it, an operator retries it)."""
    record(Platform.objects.get(pk=platform_id), "termination_failed", "system", reason)


JOBS = {
    JobKind.TERMINATE: Stage(platform_termination_clean_up, give_up=_termination_gave_up),
    JobKind.RELEASE_ADDRESSES: Stage(platform_addresses_release, give_up=_termination_gave_up),
}
