"""Step 3 of the guide, DNS: a track beside the platform's state that never blocks the
certificate. DNS Assist writes A and AAAA into the account's zone; otherwise an email
gives the records to create. Either way the records are checked until they are right,
more and more rarely, and the DNS track moves through its declared transitions
(provisioning.models.Platform.dns_*)."""

import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from outbox import owed
from outbox.owed import Later
from provisioning import links
from provisioning.errors import NotAllowed, StageFailed
from provisioning.models import DnsState, Job, JobKind, Platform, PlatformState
from provisioning.selectors import managed_zone
from provisioning.services.common import (
    SYSTEM,
    Stage,
    locked,
    owe_job,
    owe_job_once,
    queue_platform_email,
    record,
)
from provisioning.states import Step
from zones.checks import check_address_records
from zones.errors import DnsError
from zones.mail import relative_name
from zones.writers import get_writer

# No DNS work for a platform ended or on hold (termination removes what DNS Assist wrote).
ENDED_OR_HELD = (PlatformState.CANCELLED, PlatformState.SUSPENDED, PlatformState.TERMINATED)


def expected_records(platform: Platform) -> list[dict]:
    """The records the server name needs, as the customer must create them."""
    return [
        {
            "name": platform.server_name,
            # As DNS editors that work inside the zone want it (`mail`), as the status page shows.
            "relative_name": relative_name(platform.server_name, zone=platform.domain),
            "rtype": rtype,
            "value": value,
            "ttl": settings.DNS_RECORD_TTL,
        }
        for rtype, value in (("A", platform.ipv4), ("AAAA", platform.ipv6))
    ]


def dns_instructions_email_context(platform: Platform) -> dict:
    return {"records": expected_records(platform), "status_url": links.status_url(platform)}


def _dns_moved(
    platform: Platform, actor: str, message: str = "", *, also: tuple[str, ...] = ()
) -> None:
    """Save the DNS track after its transition method ran (with the fields `also` in the
    same UPDATE), with its event."""
    platform.dns_message = message
    platform.save(update_fields=["dns_state", "dns_message", *also])
    record(platform, f"dns_{platform.dns_state}", actor, message)


def platform_dns_start(platform: Platform, actor: str) -> None:
    """Once the server name is chosen (in the caller's transaction): DNS Assist writes the
    records, or the customer gets them by email; checks follow."""
    if platform.dns_assist:
        owe_job(platform, JobKind.DNS_ASSIST)
        return
    platform.dns_instructions_sent()
    _dns_moved(platform, actor)
    queue_platform_email(
        platform,
        "dns_instructions",
        context=dns_instructions_email_context(platform),
        new_setup=True,
    )
    owe_job(platform, JobKind.DNS_CHECK)


def platform_dns_assist(*, platform_id: int) -> None:
    """DNS Assist: A and AAAA written into the account's zone, then read back from the
    primary. Safe to run twice: the writer leaves records that are already right alone."""
    platform = Platform.objects.select_related("account").get(pk=platform_id)
    if not platform.dns_assist or platform.state in ENDED_OR_HELD:
        return
    if platform.dns_state in (DnsState.ASSISTED, DnsState.VERIFIED):
        return  # written by an earlier attempt, or right already
    zone = managed_zone(platform.account, platform.domain)
    if zone is None:
        raise StageFailed(
            f"The zone of {platform.domain} is no longer managed on account {platform.account.nic}."
        )
    writer = get_writer()
    writer.set_address_records(
        zone=zone.name,
        name=platform.server_name,
        ipv4=platform.ipv4,
        ipv6=platform.ipv6,
        ttl=settings.DNS_RECORD_TTL,
    )
    held = writer.read_address_records(zone=zone.name, name=platform.server_name)
    if held.ipv4 != (platform.ipv4,) or held.ipv6 != (platform.ipv6,):
        raise StageFailed(
            f"The primary holds {', '.join(held.ipv4 + held.ipv6) or 'nothing'} for "
            f"{platform.server_name} after the update.",
            transient=True,
        )
    with transaction.atomic():
        platform = locked(platform_id, account=False)
        if platform.dns_state == DnsState.VERIFIED:
            return  # a check found them right meanwhile
        if platform.dns_state != DnsState.ASSISTED:
            platform.dns_assisted()
            _dns_moved(
                platform,
                SYSTEM,
                f"A {platform.ipv4} and AAAA {platform.ipv6} written in zone {zone.name}.",
            )
        # Checked at once, even when a check found them missing before and waits its turn.
        check = platform.dns_state_info.job_for(platform)
        owed.owe_now(Job(platform=platform, kind=check), among=platform.jobs.filter(kind=check))


def platform_dns_failed(*, platform_id: int, reason: str) -> None:
    """DNS Assist or the checks gave up: the DNS track shows the error, the platform goes
    on (DNS never blocks the certificate)."""
    with transaction.atomic():
        platform = locked(platform_id)
        if platform.dns_state != DnsState.ERROR:
            platform.dns_error()
            _dns_moved(platform, SYSTEM, reason)


def _next_dns_check(platform: Platform):
    delay = min(
        settings.DNS_CHECK_INTERVAL * 2 ** max(platform.dns_checks_unverified - 1, 0),
        settings.DNS_CHECK_MAX_INTERVAL,
    )
    return timezone.now() + timedelta(seconds=delay * random.uniform(0.9, 1.1))


def _dns_checks_over(platform: Platform) -> bool:
    if platform.state in (PlatformState.FAILED, *ENDED_OR_HELD):
        return True
    if platform.dns_state in (DnsState.VERIFIED, DnsState.ERROR):
        return True
    stop = timedelta(seconds=settings.DNS_CHECK_STOP_AFTER)
    return platform.ready_at is not None and platform.ready_at + stop < timezone.now()


def platform_dns_check(*, platform_id: int, actor: str = SYSTEM) -> Later | None:
    """Resolve the server name's A and AAAA and record what was found. Returns when to
    check again (Later), or None when checks are over (verified, or given up)."""
    platform = Platform.objects.get(pk=platform_id)
    if _dns_checks_over(platform) and actor == SYSTEM:
        return None
    try:
        result = check_address_records(
            name=platform.server_name, ipv4=platform.ipv4, ipv6=platform.ipv6
        )
    except DnsError as error:
        if actor != SYSTEM:
            raise StageFailed(error.message, transient=True) from error
        return Later(timezone.now() + timedelta(seconds=settings.DNS_CHECK_INTERVAL))
    with transaction.atomic():
        platform = locked(platform_id, account=False)
        platform.dns_records = [
            {
                "rtype": r.rtype,
                "name": r.name,
                "expected": r.expected,
                "found": list(r.found),
                "status": str(r.status),
            }
            for r in result.records
        ]
        platform.dns_checked_at = timezone.now()
        platform.dns_checks_unverified = (
            0 if result.verified else platform.dns_checks_unverified + 1
        )
        checked = ("dns_records", "dns_checked_at", "dns_checks_unverified")
        # What was found and the track's move, if any, in one UPDATE.
        if result.verified and platform.dns_state != DnsState.VERIFIED:
            platform.dns_verified()
            _dns_moved(platform, actor, "A and AAAA resolve to the platform.", also=checked)
        elif not result.verified and platform.dns_state not in (
            DnsState.ERROR,
            DnsState.MISMATCH,
        ):
            platform.dns_mismatch()
            _dns_moved(platform, actor, _mismatch_words(platform.dns_records), also=checked)
        else:
            platform.save(update_fields=checked)
        return None if result.verified else Later(_next_dns_check(platform))


def _mismatch_words(records: list[dict]) -> str:
    words = []
    for record_ in records:
        if record_["status"] == "missing":
            words.append(f"{record_['rtype']} {record_['name']} is missing")
        elif record_["status"] == "wrong":
            words.append(
                f"{record_['rtype']} {record_['name']} points to "
                f"{', '.join(record_['found'])} instead of {record_['expected']}"
            )
    return "; ".join(words) + "."


def platform_dns_check_now(*, platform_id: int, actor: str) -> Platform:
    """A check asked for by a person (the customer's button, an operator's action), once
    the server name is chosen."""
    if not Platform.objects.get(pk=platform_id).has_reached(Step.DNS):
        raise NotAllowed("The server name is not chosen yet: there is nothing to check.")
    platform_dns_check(platform_id=platform_id, actor=actor)
    with transaction.atomic():
        platform = locked(platform_id)
        if platform.dns_state == DnsState.VERIFIED:
            # The person's check did the waiting check's work.
            owed.fulfil(platform.jobs.filter(kind=JobKind.DNS_CHECK))
        else:
            owe_job_once(platform, JobKind.DNS_CHECK, due_at=_next_dns_check(platform))
    return platform


@transaction.atomic
def platform_dns_assist_retry(*, platform_id: int, actor: str) -> Platform:
    platform = locked(platform_id)
    if not platform.dns_assist or platform.dns_state != DnsState.ERROR:
        raise NotAllowed("DNS Assist can only be retried after an error.")
    platform.dns_retry()
    _dns_moved(platform, actor, "DNS Assist retried.")
    owe_job_once(platform, platform.dns_state_info.job_for(platform))
    return platform


JOBS = {
    JobKind.DNS_ASSIST: Stage(platform_dns_assist, platform_dns_failed),
    JobKind.DNS_CHECK: Stage(platform_dns_check, platform_dns_failed),
}
EMAILS = {"dns_instructions": dns_instructions_email_context}
