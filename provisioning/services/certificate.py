"""Step 4 of the guide, the SSL certificate: key, CSR and order; then validation by an
emailed code (internal CA) or DNS-01 (ACME, written by DNS Assist or by the customer).
Once issued, finalisation begins."""

from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from certificates.models import Backend, CertificateOrder, Method
from certificates.services import (
    DcvOutcome,
    DcvResult,
    acme_certificate_obtain,
    acme_manual_challenge,
    acme_manual_complete,
    certificate_order_create,
    dcv_code_issue,
    dcv_code_verify,
    validation_email_change,
)
from outbox.owed import Later
from provisioning import selectors
from provisioning.errors import NotAllowed, Refused, StageFailed
from provisioning.models import JobKind, Platform, PlatformState
from provisioning.rules import validation_addresses
from provisioning.selectors import managed_zone
from provisioning.services import finalisation, renewal, setup
from provisioning.services.common import (
    SYSTEM,
    Stage,
    first_email,
    locked,
    moved,
    owe_job,
    record,
)
from provisioning.services.dcv import dcv_email
from zones.checks import txt_record_served
from zones.writers import get_writer


@transaction.atomic
def platform_certificate_request(*, platform_id: int) -> None:
    """Key, CSR and certificate order; then validation by email (internal CA) or DNS-01."""
    platform = locked(platform_id, account=False)
    if platform.state != PlatformState.CONFIGURED or setup.platform_domain_lost(platform):
        return
    internal = settings.CA_BACKEND == Backend.INTERNAL
    order = certificate_order_create(
        server_name=platform.server_name,
        validation_email=platform.validation_email,
        order_number=platform.order_number,
        method=platform.validation_method if internal else None,
    )
    platform.certificate = order
    platform.request_certificate()
    moved(
        platform,
        SYSTEM,
        f"Certificate order #{platform.order_number} ({order.backend}, {order.method}).",
    )
    if order.method == Method.EMAIL:
        dcv_email(platform, order, dcv_code_issue(order=order), resend_of=None, actor=SYSTEM)
    else:
        owe_job(platform, platform.state_info.job_for(platform))


def _certificate_issued(platform: Platform, actor: str) -> None:
    """certificate_pending → certificate_issued, then finalisation, in the caller's
    transaction."""
    order = platform.certificate
    platform.issue_certificate()
    moved(platform, actor, f"Serial {order.serial}, valid until {order.not_after:%Y-%m-%d}.")
    setup.platforms_release_domain(platform)
    renewal.owe_renewal(platform, order)
    finalisation.platform_finalise(platform)


def order_issued(platform: Platform, order: CertificateOrder, actor: str) -> None:
    """An order of the platform was issued (in the caller's transaction, the platform
    locked): its first certificate moves the platform on; a renewal replaces the current."""
    if order.renewal_of_id is not None:
        renewal.renewal_issued(platform, order, actor)
    elif (
        platform.state == PlatformState.CERTIFICATE_PENDING and platform.certificate_id == order.pk
    ):
        platform.certificate = order
        _certificate_issued(platform, actor)


NOT_WAITING = "This certificate is not waiting for an e-mail validation."


def platform_dcv_submit(*, platform_id: int, code: str, actor: str) -> DcvResult:
    """The customer pasted the validation code: a right one issues the certificate, unless
    another platform proved control of the domain first (then back to setup)."""
    with transaction.atomic():
        platform = locked(platform_id, account=False)
        lost = platform.state == PlatformState.CERTIFICATE_PENDING and (
            setup.platform_domain_lost(platform)
        )
        if not lost:
            try:
                with transaction.atomic():
                    return _dcv_verify(platform, code, actor)
            except IntegrityError:
                # Validated at the same moment as another platform, which holds it now.
                if not setup.platform_domain_lost(locked(platform_id, account=False)):
                    raise
    raise NotAllowed(setup.DOMAIN_TAKEN)


def _dcv_verify(platform: Platform, code: str, actor: str) -> DcvResult:
    if platform.certificate is None:
        taken = platform.domain and selectors.domain_held(platform.domain, excluding=platform)
        raise NotAllowed(setup.DOMAIN_TAKEN if taken else NOT_WAITING)
    # The order waiting (the first, or a renewal); once issued, the right code of the
    # latest order still answers "valid".
    order = selectors.certificate_awaiting(platform) or platform.certificate
    if order.method != Method.EMAIL:
        raise NotAllowed(NOT_WAITING)
    result = dcv_code_verify(order_id=order.pk, code=code)
    if result.outcome != DcvOutcome.VALID:
        record(platform, f"dcv_{result.outcome}", actor, _dcv_words(result))
    else:
        order_issued(platform, result.order, actor)
    return result


def _dcv_words(result: DcvResult) -> str:
    if result.outcome == DcvOutcome.LOCKED:
        return "Validation locked after too many wrong codes."
    if result.outcome == DcvOutcome.EXPIRED:
        return "An expired validation code was entered."
    return f"A wrong validation code was entered ({result.attempts_left} attempts left)."


@transaction.atomic
def platform_dcv_resend(*, platform_id: int, actor: str, address: str | None = None) -> None:
    """A new validation code, emailed again (to another offered address if given)."""
    platform = locked(platform_id)
    order = selectors.certificate_awaiting(platform)
    if order is None:
        raise NotAllowed("The certificate is not waiting for validation.")
    if order.method != Method.EMAIL:
        raise NotAllowed("This certificate is validated through DNS, not by e-mail.")
    if address and address != order.validation_email:
        if address not in validation_addresses(platform.domain):
            raise Refused("validation_email", "Choose one of the offered addresses.")
        order = validation_email_change(order_id=order.pk, address=address)
        platform.validation_email = address
        platform.save(update_fields=["validation_email", "updated_at"])
        record(platform, "validation_email_changed", actor, f"Validation address: {address}.")
    dcv_email_send(platform, order, actor=actor)


def dcv_email_send(platform: Platform, order: CertificateOrder, *, actor: str) -> None:
    """A new code for the waiting order, emailed (a copy of the first email when there was
    one: a person asked)."""
    code = dcv_code_issue(order=order)
    if order.renewal_of_id is None:
        first = first_email(platform, "dcv")
    else:
        first = renewal.renewal_first_dcv_email(order)
    dcv_email(platform, order, code, resend_of=first, actor=actor)


def platform_acme_dns(*, platform_id: int) -> None:
    """ACME with DNS Assist: the DNS-01 record written and removed by the portal."""
    platform = Platform.objects.select_related("account", "certificate").get(pk=platform_id)
    if platform.state != PlatformState.CERTIFICATE_PENDING or domain_lost(platform):
        return
    zone = managed_zone(platform.account, platform.domain)
    if zone is None:
        raise StageFailed(f"The zone of {platform.domain} is no longer managed.")
    acme_certificate_obtain(
        order_id=platform.certificate_id, dns_writer=get_writer(), zone=zone.name
    )
    acme_issued(platform_id, platform.certificate_id)


def platform_acme_manual(*, platform_id: int) -> Later | None:
    """ACME without DNS Assist: the customer adds the TXT record shown on the status page;
    the order is completed once the record is served. Returns when to look again."""
    platform = Platform.objects.select_related("account", "certificate").get(pk=platform_id)
    first = platform.state == PlatformState.CERTIFICATE_PENDING
    if first and domain_lost(platform):
        return None
    order = platform.certificate if first else selectors.certificate_renewal(platform)
    if order is None or order.backend != Backend.ACME:
        return None
    if order.status == order.Status.ISSUED:
        # Issued by an attempt cut short before the platform moved on: only that is left.
        acme_issued(platform_id, order.pk)
        return None
    if order.status not in [order.Status.PENDING, order.Status.FAILED]:
        return None
    record_ = acme_manual_challenge(order_id=order.pk)
    if not txt_record_served(name=record_.name, value=record_.value):
        return Later(timezone.now() + timedelta(seconds=settings.DNS_CHECK_INTERVAL))
    acme_manual_complete(order_id=order.pk)
    acme_issued(platform_id, order.pk)
    return None


def domain_lost(platform: Platform) -> bool:
    """Another platform holds the domain: no certificate for it (back to setup). Read
    without the row lock first: a job talks to the CA unlocked."""
    if not selectors.domain_held(platform.domain, excluding=platform):
        return False
    with transaction.atomic():
        platform = locked(platform.pk)
        return platform.state == PlatformState.CERTIFICATE_PENDING and (
            setup.platform_domain_lost(platform)
        )


def acme_issued(platform_id: int, order_id: int) -> None:
    with transaction.atomic():
        platform = locked(platform_id)
        order_issued(platform, CertificateOrder.objects.get(pk=order_id), SYSTEM)


JOBS = {
    JobKind.CERTIFICATE: Stage(platform_certificate_request),
    JobKind.ACME_DNS: Stage(platform_acme_dns),
    JobKind.ACME_MANUAL: Stage(
        platform_acme_manual, give_up=partial(renewal.renewal_give_up, retry=JobKind.ACME_MANUAL)
    ),
}
