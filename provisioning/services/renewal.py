"""Certificates that stay valid: when a certificate is issued its renewal is owed (a job due
when CERTIFICATE_RENEW_BEFORE_PERCENT of its lifetime is left); the renewal is issued at
once when the last validation may be reused, otherwise by the platform's method (email,
DNS record, ACME DNS-01), with reminders while it waits for the customer. The platform's
state never moves: a ready platform stays ready."""

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.utils import timezone

from certificates.errors import CertificateOrderError
from certificates.models import IN_USE, Backend, CertificateOrder, Method
from certificates.selectors import renewal_due_at
from certificates.services import (
    acme_certificate_obtain,
    certificate_order_renew,
    certificate_revoke,
)
from notifications.models import Email
from outbox import owed
from outbox.owed import Later
from provisioning import links, selectors
from provisioning.errors import NotAllowed, StageFailed
from provisioning.models import JobKind, Platform, PlatformState, RenewalReminder
from provisioning.services.common import (
    SYSTEM,
    Stage,
    locked,
    owe_job,
    owe_job_once,
    platform_fail,
    queue_platform_email,
    record,
)
from provisioning.services.dcv import dcv_email
from provisioning.states import DOMAIN_HOLDING_STATES
from webhooks.models import EventType
from webhooks.services import webhook_event_owe
from zones.writers import get_writer

logger = logging.getLogger(__name__)

# RFC 5280 keyCompromise: why an operator revokes and replaces.
KEY_COMPROMISE = 1
RENEWABLE = [*IN_USE, CertificateOrder.Status.EXPIRED, CertificateOrder.Status.REVOKED]


def owe_renewal(platform: Platform, order: CertificateOrder) -> None:
    """The order's certificate was just issued: its renewal is owed for the renewal moment
    (unless owed already: the renewal job itself, running, reschedules its own row)."""
    owe_job_once(platform, JobKind.CERTIFICATE_RENEW, due_at=renewal_due_at(order=order))


def _renewable(platform: Platform) -> bool:
    """A platform holding its name (ready, finalising...) whose certificate is in force."""
    holds = platform.state in DOMAIN_HOLDING_STATES or (
        platform.state == PlatformState.FAILED and platform.failed_from in DOMAIN_HOLDING_STATES
    )
    return holds and platform.certificate is not None and platform.certificate.status in RENEWABLE


def platform_certificate_renew(*, platform_id: int) -> Later | None:
    """The renewal job: the new order, then its certificate at once (reuse period), by
    ACME with DNS Assist, or by the customer's validation (email, DNS record). Everything
    it owes is written with the new order, in one transaction: a worker killed before the
    commit leaves nothing, and a rerun after it finds the renewal made and sends nothing
    again."""
    with transaction.atomic():
        platform = locked(platform_id)
        if not _renewable(platform):
            return None
        current = platform.certificate
        started = CertificateOrder.objects.filter(renewal_of=current).exists()
        renewal = certificate_order_renew(previous_order_id=current.pk)
        order = renewal.order
        if order.status == CertificateOrder.Status.ISSUED:
            renewal_issued(platform, order, SYSTEM)
            return Later(renewal_due_at(order=order))
        if not started:
            _renewal_started(platform, order, renewal.dcv_code)
    if order.backend == Backend.ACME and platform.dns_assist:
        return _acme_renew_unattended(platform, order)
    return None


def _renewal_started(platform: Platform, order: CertificateOrder, code: str | None) -> None:
    """A renewal awaiting validation: what each method needs, in the caller's transaction."""
    how = {Method.EMAIL: "by e-mail", Method.DNS: "by DNS record", Method.ACME: "by ACME DNS-01"}
    record(
        platform,
        "certificate_renewal",
        SYSTEM,
        f"Renewal order #{order.order_number} of serial {platform.certificate.serial}, "
        f"validated {how[order.method]}.",
    )
    if order.method == Method.EMAIL:
        dcv_email(platform, order, code, resend_of=None, actor=SYSTEM)
    elif order.method == Method.DNS:
        owe_job_once(platform, JobKind.CERTIFICATE_DNS)
    elif not platform.dns_assist:
        owe_job_once(platform, JobKind.ACME_MANUAL)
    if order.method == Method.EMAIL or not platform.dns_assist:
        # The customer has a part to play (DNS Assist writes the records otherwise):
        # reminders until it is done.
        owe_job_once(platform, JobKind.RENEWAL_REMINDER)


def _acme_renew_unattended(platform: Platform, order: CertificateOrder) -> Later:
    """ACME with DNS Assist: the CA checks the record the portal writes; nobody acts. A
    CA that cannot be reached raises AcmeError (transient: the job is retried with
    backoff, its error shown to the operator)."""
    zone = selectors.managed_zone(platform.account, platform.domain)
    if zone is None:
        raise StageFailed(f"The zone of {platform.domain} is no longer managed.")
    acme_certificate_obtain(order_id=order.pk, dns_writer=get_writer(), zone=zone.name)
    with transaction.atomic():
        platform = locked(platform.pk)
        order = CertificateOrder.objects.get(pk=order.pk)
        renewal_issued(platform, order, SYSTEM)
    return Later(renewal_due_at(order=order))


def renewal_issued(platform: Platform, order: CertificateOrder, actor: str) -> None:
    """The renewal's certificate is issued: it becomes the platform's certificate (the one
    before is kept, replaced), the customer is told its new end, and its own renewal is
    owed. In the caller's transaction, the platform locked; a repeat does nothing."""
    if platform.certificate_id == order.pk or order.renewal_of_id != platform.certificate_id:
        return
    previous = platform.certificate
    platform.certificate = order
    platform.save(update_fields=["certificate", "updated_at"])
    record(
        platform,
        "certificate_renewed",
        actor,
        f"Serial {order.serial} replaces {previous.serial}, "
        f"valid until {order.not_after:%Y-%m-%d}.",
    )
    queue_platform_email(
        platform,
        "certificate_renewed",
        context={"certificate": order, "previous": previous, "status_url": _status_url(platform)},
        target=order,
        actor=actor,
    )
    webhook_event_owe(
        platform,
        EventType.CERTIFICATE_RENEWED,
        serial=order.serial,
        not_after=order.not_after.isoformat(),
    )
    owed.cancel_open(platform.jobs.filter(kind=JobKind.RENEWAL_REMINDER), reason="renewed")
    owe_renewal(platform, order)


def renewal_first_dcv_email(order: CertificateOrder) -> Email | None:
    """The renewal's first validation email, which a resend names."""
    return Email.objects.filter(
        target_type=ContentType.objects.get_for_model(CertificateOrder),
        target_id=order.pk,
        kind="dcv",
        resend_of=None,
    ).first()


def _status_url(platform: Platform) -> str:
    return links.status_url(platform)


def platform_renewal_remind(*, platform_id: int) -> Later | None:
    """While a renewal waits for the customer: the reminder of the latest threshold passed
    (RENEWAL_REMINDER_SECONDS before the current certificate ends), each once; then wait
    for the next threshold. Stops once the renewal is issued or the certificate ended."""
    with transaction.atomic():
        platform = locked(platform_id)
        current = platform.certificate
        renewal = selectors.certificate_awaiting(platform)
        if current is None or renewal is None or renewal.renewal_of_id != current.pk:
            return None
        now = timezone.now()
        left = (current.not_after - now).total_seconds()
        passed = [s for s in settings.RENEWAL_REMINDER_SECONDS if left <= s]
        if passed and left > 0:
            _remind(platform, current, renewal, passed[-1])
        upcoming = [s for s in settings.RENEWAL_REMINDER_SECONDS if left > s]
        if not upcoming or left <= 0:
            return None
        return Later(current.not_after - timedelta(seconds=upcoming[0]))


def _remind(
    platform: Platform, current: CertificateOrder, renewal: CertificateOrder, seconds: int
) -> None:
    """One reminder, unless this threshold's was sent (or a later one: they go in order)."""
    if renewal.reminders.filter(seconds_before__lte=seconds).exists():
        return
    try:
        with transaction.atomic():
            RenewalReminder.objects.create(platform=platform, order=renewal, seconds_before=seconds)
    except IntegrityError:
        return
    days = max(round(seconds / 86400), 0)
    queue_platform_email(
        platform,
        "renewal_reminder",
        context={
            "certificate": current,
            "renewal": renewal,
            "days": days,
            "dcv_url": links.dcv_link(platform, renewal.order_number),
            "status_url": _status_url(platform),
            "dns_record": selectors.certificate_dns_record(renewal),
        },
        target=RenewalReminder.objects.get(order=renewal, seconds_before=seconds),
    )


def platform_certificate_revoke_replace(*, platform_id: int, actor: str) -> CertificateOrder:
    """An operator's "revoke and replace" (a key suspected compromised): the current
    certificate revoked (the CA first), then its replacement through the renewal path, now."""
    platform = Platform.objects.select_related("certificate").get(pk=platform_id)
    current = platform.certificate
    if current is None or current.status not in [*IN_USE, CertificateOrder.Status.REVOKED]:
        raise NotAllowed("This platform has no certificate in force to revoke.")
    try:
        revoked = certificate_revoke(order_id=current.pk, reason=KEY_COMPROMISE)
    except CertificateOrderError as error:
        raise NotAllowed(error.message) from None
    with transaction.atomic():
        platform = locked(platform_id)
        record(
            platform,
            "certificate_revoked",
            actor,
            f"Serial {revoked.serial} revoked (key compromise); a replacement is under way.",
        )
        due = platform.jobs.filter(kind=JobKind.CERTIFICATE_RENEW)
        if not owed.run_now(due) and not owed.is_owed(due):
            owe_job(platform, JobKind.CERTIFICATE_RENEW)
    return revoked


def renewal_give_up(
    *, platform_id: int, reason: str, retry: JobKind = JobKind.CERTIFICATE_RENEW
) -> None:
    """A certificate stage gave up: a platform on its way to ready is failed (the first
    certificate); a ready one stays ready, the operator is told by an event, and the
    renewal is tried again after the longest backoff (the certificate must not lapse
    because the CA was down for a while)."""
    with transaction.atomic():
        platform = locked(platform_id)
        if platform.state not in DOMAIN_HOLDING_STATES:
            platform_fail(platform_id=platform_id, reason=reason)
            return
        record(platform, "certificate_renewal_failed", SYSTEM, reason)
        logger.warning("Platform %s: %s", platform.service, reason)
        retry_at = timezone.now() + timedelta(seconds=settings.RETRY_BACKOFF_MAX)
        owe_job_once(platform, retry, due_at=retry_at)


JOBS = {
    JobKind.CERTIFICATE_RENEW: Stage(platform_certificate_renew, give_up=renewal_give_up),
    JobKind.RENEWAL_REMINDER: Stage(
        platform_renewal_remind, give_up=partial(renewal_give_up, retry=JobKind.RENEWAL_REMINDER)
    ),
}
