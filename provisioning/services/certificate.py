"""Step 4 of the guide, the SSL certificate: key, CSR and order; then validation by an
emailed code (internal CA) or DNS-01 (ACME, written by DNS Assist or by the customer).
Once issued, finalisation begins."""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from certificates.models import Backend
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
from notifications.models import Email
from notifications.services import Secret
from outbox.owed import Later
from provisioning import links, selectors
from provisioning.errors import NotAllowed, Refused, StageFailed
from provisioning.models import JobKind, Platform, PlatformState
from provisioning.rules import validation_addresses
from provisioning.selectors import managed_zone
from provisioning.services import finalisation, setup
from provisioning.services.common import (
    SYSTEM,
    Stage,
    first_email,
    locked,
    moved,
    owe_job,
    queue_platform_email,
    record,
)
from zones.checks import txt_record_served
from zones.writers import get_writer


def _dcv_email(platform: Platform, code: str, *, resend_of: Email | None, actor: str) -> None:
    """The certificate authority's email (in English, as the CA writes it)."""
    queue_platform_email(
        platform,
        "dcv",
        recipient=platform.validation_email,
        language="en",
        context={
            "order_number": platform.order_number,
            "server_name": platform.server_name,
            "validation_email": platform.validation_email,
            "code": Secret(code),
            "dcv_url": links.dcv_link(platform),
            "expires_at": platform.certificate.dcv_code_expires_at,
            "max_attempts": settings.DCV_MAX_ATTEMPTS,
        },
        sender=settings.DCV_FROM_EMAIL,
        resend_of=resend_of,
        actor=actor,
        new_setup=resend_of is None,
    )


@transaction.atomic
def platform_certificate_request(*, platform_id: int) -> None:
    """Key, CSR and certificate order; then validation by email (internal CA) or DNS-01."""
    platform = locked(platform_id)
    if platform.state != PlatformState.CONFIGURED or setup.platform_domain_lost(platform):
        return
    order = certificate_order_create(
        server_name=platform.server_name,
        validation_email=platform.validation_email,
        order_number=platform.order_number,
    )
    platform.certificate = order
    platform.request_certificate()
    moved(platform, SYSTEM, f"Certificate order #{platform.order_number} ({order.backend}).")
    if order.backend == Backend.INTERNAL:
        _dcv_email(platform, dcv_code_issue(order=order), resend_of=None, actor=SYSTEM)
    else:
        owe_job(platform, platform.state_info.job_for(platform))


def _certificate_issued(platform: Platform, actor: str) -> None:
    """certificate_pending → certificate_issued, then finalisation, in the caller's
    transaction."""
    order = platform.certificate
    platform.issue_certificate()
    moved(platform, actor, f"Serial {order.serial}, valid until {order.not_after:%Y-%m-%d}.")
    setup.platforms_release_domain(platform)
    finalisation.platform_finalise(platform)


NOT_WAITING = "This certificate is not waiting for an e-mail validation."


def platform_dcv_submit(*, platform_id: int, code: str, actor: str) -> DcvResult:
    """The customer pasted the validation code: a right one issues the certificate, unless
    another platform proved control of the domain first (then back to setup)."""
    with transaction.atomic():
        platform = locked(platform_id)
        lost = platform.state == PlatformState.CERTIFICATE_PENDING and (
            setup.platform_domain_lost(platform)
        )
        if not lost:
            try:
                with transaction.atomic():
                    return _dcv_verify(platform, code, actor)
            except IntegrityError:
                # Validated at the same moment as another platform, which holds it now.
                if not setup.platform_domain_lost(locked(platform_id)):
                    raise
    raise NotAllowed(setup.DOMAIN_TAKEN)


def _dcv_verify(platform: Platform, code: str, actor: str) -> DcvResult:
    if platform.certificate is None:
        taken = platform.domain and selectors.domain_held(platform.domain, excluding=platform)
        raise NotAllowed(setup.DOMAIN_TAKEN if taken else NOT_WAITING)
    result = dcv_code_verify(order_id=platform.certificate_id, code=code)
    if result.outcome != DcvOutcome.VALID:
        record(platform, f"dcv_{result.outcome}", actor, _dcv_words(result))
    elif platform.state == PlatformState.CERTIFICATE_PENDING:
        platform.certificate = result.order
        _certificate_issued(platform, actor)
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
    if platform.state != PlatformState.CERTIFICATE_PENDING or platform.certificate is None:
        raise NotAllowed("The certificate is not waiting for validation.")
    if platform.certificate.backend != Backend.INTERNAL:
        raise NotAllowed("This certificate is validated through DNS, not by e-mail.")
    if address and address != platform.validation_email:
        if address not in validation_addresses(platform.domain):
            raise Refused("validation_email", "Choose one of the offered addresses.")
        validation_email_change(order_id=platform.certificate_id, address=address)
        platform.validation_email = address
        platform.save(update_fields=["validation_email", "updated_at"])
        record(platform, "validation_email_changed", actor, f"Validation address: {address}.")
    code = dcv_code_issue(order=platform.certificate)
    _dcv_email(platform, code, resend_of=first_email(platform, "dcv"), actor=actor)


def platform_acme_dns(*, platform_id: int) -> None:
    """ACME with DNS Assist: the DNS-01 record written and removed by the portal."""
    platform = Platform.objects.select_related("account", "certificate").get(pk=platform_id)
    if platform.state != PlatformState.CERTIFICATE_PENDING or _domain_lost(platform):
        return
    zone = managed_zone(platform.account, platform.domain)
    if zone is None:
        raise StageFailed(f"The zone of {platform.domain} is no longer managed.")
    acme_certificate_obtain(
        order_id=platform.certificate_id, dns_writer=get_writer(), zone=zone.name
    )
    acme_issued(platform_id)


def platform_acme_manual(*, platform_id: int) -> Later | None:
    """ACME without DNS Assist: the customer adds the TXT record shown on the status page;
    the order is completed once the record is served. Returns when to look again."""
    platform = Platform.objects.select_related("certificate").get(pk=platform_id)
    if platform.state != PlatformState.CERTIFICATE_PENDING or _domain_lost(platform):
        return None
    if platform.certificate.status == platform.certificate.Status.ISSUED:
        # Issued by an attempt cut short before the platform moved on: only that is left.
        acme_issued(platform_id)
        return None
    record_ = acme_manual_challenge(order_id=platform.certificate_id)
    if not txt_record_served(name=record_.name, value=record_.value):
        return Later(timezone.now() + timedelta(seconds=settings.DNS_CHECK_INTERVAL))
    acme_manual_complete(order_id=platform.certificate_id)
    acme_issued(platform_id)
    return None


def _domain_lost(platform: Platform) -> bool:
    """Another platform holds the domain: no certificate for it (back to setup). Read
    without the row lock first: a job talks to the CA unlocked."""
    if not selectors.domain_held(platform.domain, excluding=platform):
        return False
    with transaction.atomic():
        platform = locked(platform.pk)
        return platform.state == PlatformState.CERTIFICATE_PENDING and (
            setup.platform_domain_lost(platform)
        )


def acme_issued(platform_id: int) -> None:
    with transaction.atomic():
        platform = locked(platform_id)
        if platform.state == PlatformState.CERTIFICATE_PENDING:
            _certificate_issued(platform, SYSTEM)


JOBS = {
    JobKind.CERTIFICATE: Stage(platform_certificate_request),
    JobKind.ACME_DNS: Stage(platform_acme_dns),
    JobKind.ACME_MANUAL: Stage(platform_acme_manual),
}
