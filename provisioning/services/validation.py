"""Validation by DNS record (BR §3.2.2.4.7) for the internal CA, of the first certificate
and of renewals: the `_dnsauth` TXT record written by DNS Assist (and removed after
issuance) or added by the customer, checked at the zone's authoritative servers until it
is served; and the customer's switch between email and DNS record while validation waits."""

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from certificates.models import Backend, CertificateOrder, Method
from certificates.selectors import dns_validation_record
from certificates.services import (
    ACME_TXT_TTL,
    DnsOutcome,
    dns_record_verify,
    dns_token_issue,
    validation_method_change,
)
from outbox import owed
from outbox.owed import Later
from provisioning import selectors
from provisioning.errors import NotAllowed, Refused, StageFailed
from provisioning.models import JobKind, Platform, ValidationMethod
from provisioning.services import certificate, renewal
from provisioning.services.common import Stage, locked, owe_job_once, record
from zones.checks import txt_values_served
from zones.errors import DnsError
from zones.writers import get_writer

logger = logging.getLogger(__name__)

NOT_WAITING = "The certificate is not waiting for validation."


def platform_certificate_dns(*, platform_id: int) -> Later | None:
    """The job of a DNS-record validation: with DNS Assist, write the record; then look
    for it and have the CA issue once it is served. Not served yet: looked for again later,
    less and less often (DNS_CHECK_INTERVAL doubling up to DNS_CHECK_MAX_INTERVAL)."""
    platform = Platform.objects.select_related("account", "certificate").get(pk=platform_id)
    order = selectors.certificate_awaiting(platform)
    if order is None or order.method != Method.DNS:
        return None
    if order.renewal_of_id is None and certificate.domain_lost(platform):
        return None  # another platform proved control first: back to setup
    if platform.dns_assist:
        _record_write(platform, order)
    issued = _check(platform, order)
    if issued:
        return None
    return Later(timezone.now() + _next_check_in(order))


def _next_check_in(order: CertificateOrder) -> timedelta:
    """Checks space out as the order ages: about twice as far apart each time."""
    waited = (timezone.now() - order.created_at).total_seconds()
    seconds = min(max(settings.DNS_CHECK_INTERVAL, waited), settings.DNS_CHECK_MAX_INTERVAL)
    return timedelta(seconds=seconds)


def _zone(platform: Platform) -> str:
    zone = selectors.managed_zone(platform.account, platform.domain)
    if zone is None:
        raise StageFailed(f"The zone of {platform.domain} is no longer managed.")
    return zone.name


def _record_write(platform: Platform, order: CertificateOrder) -> None:
    record_ = dns_validation_record(order=order)
    get_writer().set_txt(
        zone=_zone(platform), name=record_.name, value=record_.value, ttl=ACME_TXT_TTL
    )


def _check(platform: Platform, order: CertificateOrder) -> bool:
    """Look for the record; issue when found. True once the order is issued."""
    written = dns_validation_record(order=order)
    check = dns_record_verify(order_id=order.pk, txt_lookup=txt_values_served)
    if check.outcome == DnsOutcome.EXPIRED:
        # The value is older than a validation value may live: a new one is to be served.
        dns_token_issue(order_id=order.pk)
        if platform.dns_assist:
            _record_remove(platform, written.name, written.value)
        with transaction.atomic():
            record(locked(platform.pk), "dns_validation_renewed", "system", "New TXT value.")
        return False
    if check.outcome != DnsOutcome.ISSUED:
        return False
    with transaction.atomic():
        certificate.order_issued(locked(platform.pk), check.order, "system")
    if platform.dns_assist:
        _record_remove(platform, written.name, written.value)
    return True


def _record_remove(platform: Platform, name: str, value: str) -> None:
    """After issuance the record proves nothing more: DNS Assist removes it. A failure to
    remove is logged, not retried: the value can never validate again."""
    try:
        get_writer().delete_txt(zone=_zone(platform), name=name, value=value)
    except (DnsError, StageFailed) as error:
        logger.warning("TXT %s of %s left in place: %s", name, platform.service, error.message)


def platform_certificate_dns_check_now(*, platform_id: int, actor: str) -> bool:
    """The customer's "check now": look for the record at once. True when issued."""
    platform = Platform.objects.select_related("account", "certificate").get(pk=platform_id)
    order = selectors.certificate_awaiting(platform)
    if order is None or order.method != Method.DNS:
        raise NotAllowed(NOT_WAITING)
    issued = _check(platform, order)
    if issued:
        owed.fulfil(platform.jobs.filter(kind=JobKind.CERTIFICATE_DNS))
    return issued


@transaction.atomic
def platform_validation_method_change(*, platform_id: int, method: str, actor: str) -> None:
    """The customer switches how they prove control while validation waits: to email (a
    new code is emailed), or to DNS record (the record is shown, or written by DNS Assist,
    and checked). What the old method sent or showed stops working."""
    if method not in ValidationMethod.values:
        raise Refused("validation_method", "Choose e-mail or DNS record.")
    platform = locked(platform_id)
    order = selectors.certificate_awaiting(platform)
    if order is None:
        raise NotAllowed(NOT_WAITING)
    if order.backend != Backend.INTERNAL:
        raise NotAllowed("This certificate authority validates through DNS only.")
    if order.method == method:
        raise Refused("validation_method", "This is already the validation method.")
    written = dns_validation_record(order=order) if platform.dns_assist else None
    order = validation_method_change(order_id=order.pk, method=method)
    platform.validation_method = method
    platform.save(update_fields=["validation_method", "updated_at"])
    record(
        platform, "validation_method_changed", actor, f"Validation by {order.get_method_display()}."
    )
    if method == Method.EMAIL:
        owed.cancel_open(
            platform.jobs.filter(kind=JobKind.CERTIFICATE_DNS), reason="switched to e-mail"
        )
        certificate.dcv_email_send(platform, order, actor=actor)
        if written is not None:  # DNS Assist wrote it: it proves nothing now, it goes
            transaction.on_commit(partial(_record_remove, platform, written.name, written.value))
    else:
        owe_job_once(platform, JobKind.CERTIFICATE_DNS)


JOBS = {
    JobKind.CERTIFICATE_DNS: Stage(
        platform_certificate_dns,
        give_up=partial(renewal.renewal_give_up, retry=JobKind.CERTIFICATE_DNS),
    )
}
