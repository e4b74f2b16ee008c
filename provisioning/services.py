"""Every write of the provisioning app. Each transition is one function that runs in one
transaction, records its event and defers its side effects until commit."""

import random
import secrets
import string
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from certificates.acme_client import AcmeError
from certificates.errors import CertificateOrderError
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
from notifications.services import email_queue
from outbox import owed
from provisioning import addresses, links
from provisioning.models import (
    ACTIVE_STATES,
    Account,
    DnsState,
    Job,
    JobKind,
    Platform,
    PlatformEvent,
    PlatformState,
    Zone,
)
from provisioning.selectors import domain_in_use, managed_zone
from zones.checks import check_address_records, txt_record_served
from zones.errors import DnsError
from zones.names import InvalidDomainName, normalise_domain
from zones.writers import get_writer

SYSTEM = "system"
VALIDATION_LOCAL_PARTS = ("admin", "administrator", "webmaster", "hostmaster", "postmaster")


def actor_for(user) -> str:
    return f"{'staff' if user.is_staff else 'customer'}:{user.get_username()}"


class SetupRefused(Exception):
    """The setup form's values cannot be accepted; `field` says which one."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# Accounts and orders


@transaction.atomic
def account_create(
    *, nic: str, email: str, password: str, language: str = "fr", zones: list[str] = ()
) -> Account:
    account = Account(nic=nic, email=email, language=language)
    account.full_clean()
    account.save()
    user = get_user_model().objects.create_user(username=nic, email=email, password=password)
    account.users.add(user)
    for zone in zones:
        Zone.objects.create(account=account, name=normalise_domain(zone))
    return account


def _random_service_name() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "pex-" + "".join(secrets.choice(alphabet) for _ in range(8))


@transaction.atomic
def platform_order(*, account: Account, actor: str) -> Platform:
    """A new platform for the account; its delivery is owed from now on."""
    for _ in range(10):
        platform = Platform(
            account=account,
            service=_random_service_name(),
            order_number=secrets.randbelow(9_000_000) + 1_000_000,
        )
        try:
            with transaction.atomic():
                platform.save()
            break
        except IntegrityError:
            continue  # service name or order number already taken: draw again
    else:
        raise RuntimeError("Could not draw a free service name and order number")
    _record(platform, "ordered", actor, f"Ordered by {actor}.")
    _owe(platform, JobKind.DELIVER)
    return platform


# Transitions


def _record(platform: Platform, kind: str, actor: str, message: str = "") -> PlatformEvent:
    return PlatformEvent.objects.create(platform=platform, kind=kind, actor=actor, message=message)


def _owe(platform: Platform, kind: str, *, due_at=None) -> Job:
    return owed.owe(Job(platform=platform, kind=kind, due_at=due_at or timezone.now()))


def _moved(platform: Platform, actor: str, message: str = "") -> None:
    """Save a platform whose transition method just ran, with its event."""
    platform.state_changed_at = timezone.now()
    platform.save()
    _record(platform, platform.state, actor, message)


def _locked(platform_id: int) -> Platform:
    return Platform.objects.select_for_update().select_related("account").get(pk=platform_id)


def _email_context(platform: Platform, kind: str) -> dict:
    """What each email shows besides the platform and account; built anew for a resend."""
    if kind == "delivery":
        return {
            "setup_url": links.setup_url(platform),
            "link_days": settings.SETUP_LINK_MAX_AGE // 86400,
        }
    if kind == "dns_instructions":
        return {"records": expected_records(platform), "status_url": links.status_url(platform)}
    if kind == "ready":
        return {
            "missing_records": [r for r in platform.dns_records if r["status"] != "ok"]
            if platform.dns_state != DnsState.VERIFIED
            else [],
            "dns_verified": platform.dns_state == DnsState.VERIFIED,
            "expected_records": expected_records(platform),
            "certificate": platform.certificate,
            "home_url": settings.PORTAL_BASE_URL + "/",
        }
    return {}


def _queue_platform_email(
    platform: Platform,
    kind: str,
    *,
    recipient: str | None = None,
    language: str | None = None,
    extra: dict | None = None,
    sender: str = "",
    resend_of: Email | None = None,
    actor: str = SYSTEM,
) -> Email:
    recipient = recipient or platform.account.email
    email = email_queue(
        target=platform,
        kind=kind,
        recipient=recipient,
        language=language or platform.account.language,
        context={
            "platform": platform,
            "account": platform.account,
            **_email_context(platform, kind),
            **(extra or {}),
        },
        sender=sender,
        resend_of=resend_of,
        requested_by=actor if resend_of else "",
    )
    what = "resent" if resend_of else "queued"
    _record(platform, f"email_{kind}", actor, f"“{email.subject}” {what} for {recipient}.")
    return email


@transaction.atomic
def platform_deliver(*, platform_id: int) -> None:
    """Step 1: addresses from the pools, then the delivery email with the setup link."""
    platform = _locked(platform_id)
    if platform.state != PlatformState.ORDERED:
        return  # a redelivered task: already done
    if platform.ipv4 is None:
        addresses.allocate(platform, "ipv4", addresses.ipv4_pool())
    if platform.ipv6 is None:
        addresses.allocate(platform, "ipv6", addresses.ipv6_pool())
    platform.deliver()
    _moved(platform, SYSTEM, f"Addresses {platform.ipv4} and {platform.ipv6} allocated.")
    _queue_platform_email(platform, "delivery")


def validation_addresses(domain: str) -> list[str]:
    """The constructed addresses offered for email validation (BR 3.2.2.4.4)."""
    return [f"{local}@{domain}" for local in VALIDATION_LOCAL_PARTS]


@transaction.atomic
def platform_configure(
    *,
    platform_id: int,
    actor: str,
    subdomain: str,
    domain: str,
    validation_email: str,
    dns_assist: bool,
) -> Platform:
    """Step 2: the server name, the validation address and DNS Assist.

    Checks again, under the row lock, what the form checked, so that two submissions at
    once or a stale form change nothing."""
    platform = _locked(platform_id)
    if platform.state != PlatformState.AWAITING_SETUP:
        raise SetupRefused(None, "This platform is already configured.")
    if subdomain not in settings.SERVER_SUBDOMAINS:
        raise SetupRefused("subdomain", "Choose one of the offered sub-domains.")
    try:
        domain = normalise_domain(domain)
        server_name = normalise_domain(f"{subdomain}.{domain}")
    except InvalidDomainName as error:
        raise SetupRefused("domain", str(error)) from None
    if validation_email not in validation_addresses(domain):
        raise SetupRefused("validation_email", "Choose one of the offered addresses.")
    if dns_assist and managed_zone(platform.account, domain) is None:
        raise SetupRefused(
            "dns_assist",
            "DNS Assist needs the domain's zone to be managed on this account.",
        )
    if domain_in_use(domain, excluding=platform):
        raise SetupRefused("domain", "This domain is already used by another platform.")
    platform.domain = domain
    platform.server_name = server_name
    platform.validation_email = validation_email
    platform.dns_assist = dns_assist
    platform.configure()
    try:
        with transaction.atomic():
            _moved(
                platform,
                actor,
                f"Server name {server_name}, validation address {validation_email}, "
                f"DNS Assist {'on' if dns_assist else 'off'}.",
            )
    except IntegrityError:
        raise SetupRefused("domain", "This domain is already used by another platform.") from None
    if dns_assist:
        _owe(platform, JobKind.DNS_ASSIST)
    else:
        _dns_state(platform, DnsState.INSTRUCTIONS_SENT, actor)
        _queue_platform_email(platform, "dns_instructions")
        _owe(platform, JobKind.DNS_CHECK)
    _owe(platform, JobKind.CERTIFICATE)
    return platform


@transaction.atomic
def platform_fail(*, platform_id: int, reason: str, actor: str = SYSTEM) -> None:
    """A stage gave up: the platform is failed, visibly, until an operator retries it."""
    platform = _locked(platform_id)
    if platform.state not in ACTIVE_STATES:
        return
    platform.fail(reason=reason)
    _moved(platform, actor, reason)


@transaction.atomic
def platform_retry(*, platform_id: int, actor: str) -> Platform:
    """The operator's retry: a failed platform goes back to the stage that failed; a stage
    still waiting out its backoff (stuck) runs now. Either way its job is owed, due now."""
    platform = _locked(platform_id)
    was_failed = platform.state == PlatformState.FAILED
    if was_failed:
        platform.resume()
        _moved(platform, actor, "Retried by an operator.")
    stage_job = _stage_job(platform)
    if stage_job is None and was_failed:
        return platform  # back to waiting for the customer
    if stage_job is None:
        raise TransitionNotAllowed(
            f"Nothing to retry in state {platform.get_state_display().lower()}: "
            "the customer has to act (the emails can be resent)."
        )
    # Still waiting out its backoff: due now, with its attempts counted afresh.
    waiting = owed.run_now(platform.jobs.filter(kind=stage_job))
    if not waiting:
        _owe_once(platform, stage_job)
        return platform
    _record(platform, "retried", actor, f"{waiting[0].get_kind_display()} run now.")
    return platform


@transaction.atomic
def platform_cancel(*, platform_id: int, actor: str) -> Platform:
    platform = _locked(platform_id)
    platform.cancel()
    _moved(platform, actor, "Cancelled.")
    owed.cancel_open(platform.jobs.all(), reason="Platform cancelled")
    return platform


class StageError(Exception):
    """A stage's attempt failed: transient ones are retried with backoff."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


# Step 3: DNS. A track beside the state: it never blocks the certificate.


def expected_records(platform: Platform) -> list[dict]:
    """The records the server name needs, as the customer must create them."""
    return [
        {
            "name": platform.server_name,
            "rtype": rtype,
            "value": value,
            "ttl": settings.DNS_RECORD_TTL,
        }
        for rtype, value in (("A", platform.ipv4), ("AAAA", platform.ipv6))
    ]


def _dns_state(platform: Platform, state: str, actor: str, message: str = "") -> None:
    if platform.dns_state == state:
        return
    platform.dns_state = state
    Platform.objects.filter(pk=platform.pk).update(dns_state=state, dns_message=message)
    _record(platform, f"dns_{state}", actor, message)


def platform_dns_assist(*, platform_id: int) -> None:
    """DNS Assist: A and AAAA written into the account's zone, then read back from the
    primary. Safe to run twice: the writer leaves records that are already right alone."""
    platform = Platform.objects.select_related("account").get(pk=platform_id)
    if not platform.dns_assist or platform.dns_state not in (DnsState.PENDING, DnsState.ERROR):
        return
    if platform.state == PlatformState.CANCELLED:
        return
    zone = managed_zone(platform.account, platform.domain)
    if zone is None:
        raise StageError(
            f"The zone of {platform.domain} is no longer managed on account "
            f"{platform.account.nic}.",
            transient=False,
        )
    try:
        writer = get_writer()
        writer.set_address_records(
            zone=zone.name,
            name=platform.server_name,
            ipv4=platform.ipv4,
            ipv6=platform.ipv6,
            ttl=settings.DNS_RECORD_TTL,
        )
        held = writer.read_address_records(zone=zone.name, name=platform.server_name)
    except DnsError as error:
        raise StageError(error.message, transient=error.transient) from error
    if held.ipv4 != (platform.ipv4,) or held.ipv6 != (platform.ipv6,):
        raise StageError(
            f"The primary holds {', '.join(held.ipv4 + held.ipv6) or 'nothing'} for "
            f"{platform.server_name} after the update.",
            transient=True,
        )
    with transaction.atomic():
        platform = _locked(platform_id)
        _dns_state(
            platform,
            DnsState.ASSISTED,
            SYSTEM,
            f"A {platform.ipv4} and AAAA {platform.ipv6} written in zone {zone.name}.",
        )
        _owe_once(platform, JobKind.DNS_CHECK)


def platform_dns_assist_failed(*, platform_id: int, reason: str) -> None:
    with transaction.atomic():
        platform = _locked(platform_id)
        _dns_state(platform, DnsState.ERROR, SYSTEM, reason)


def _next_dns_check(platform: Platform):
    delay = min(
        settings.DNS_CHECK_INTERVAL * 2 ** max(platform.dns_checks_unverified - 1, 0),
        settings.DNS_CHECK_MAX_INTERVAL,
    )
    return timezone.now() + timedelta(seconds=delay * random.uniform(0.9, 1.1))


def _dns_checks_over(platform: Platform) -> bool:
    if platform.state in (PlatformState.CANCELLED, PlatformState.FAILED):
        return True
    if platform.dns_state in (DnsState.VERIFIED, DnsState.ERROR):
        return True
    stop = timedelta(seconds=settings.DNS_CHECK_STOP_AFTER)
    return platform.ready_at is not None and platform.ready_at + stop < timezone.now()


def platform_dns_check(*, platform_id: int, actor: str = SYSTEM):
    """Resolve the server name's A and AAAA and record what was found. Returns when to
    check again, or None when checks are over (verified, or given up)."""
    platform = Platform.objects.get(pk=platform_id)
    if _dns_checks_over(platform) and actor == SYSTEM:
        return None
    try:
        result = check_address_records(
            name=platform.server_name, ipv4=platform.ipv4, ipv6=platform.ipv6
        )
    except DnsError as error:
        if actor != SYSTEM:
            raise StageError(error.message, transient=True) from error
        return timezone.now() + timedelta(seconds=settings.DNS_CHECK_INTERVAL)
    with transaction.atomic():
        platform = _locked(platform_id)
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
        Platform.objects.filter(pk=platform.pk).update(
            dns_records=platform.dns_records,
            dns_checked_at=platform.dns_checked_at,
            dns_checks_unverified=platform.dns_checks_unverified,
        )
        if result.verified:
            _dns_state(platform, DnsState.VERIFIED, actor, "A and AAAA resolve to the platform.")
            return None
        if platform.dns_state != DnsState.ERROR:
            _dns_state(platform, DnsState.MISMATCH, actor, _mismatch_words(platform.dns_records))
        return _next_dns_check(platform)


def _mismatch_words(records: list[dict]) -> str:
    words = []
    for record in records:
        if record["status"] == "missing":
            words.append(f"{record['rtype']} {record['name']} is missing")
        elif record["status"] == "wrong":
            words.append(
                f"{record['rtype']} {record['name']} points to {', '.join(record['found'])} "
                f"instead of {record['expected']}"
            )
    return "; ".join(words) + "."


def platform_dns_check_now(*, platform_id: int, actor: str) -> Platform:
    """A check asked for by a person (the customer's button, an operator's action)."""
    platform_dns_check(platform_id=platform_id, actor=actor)
    with transaction.atomic():
        platform = _locked(platform_id)
        if platform.dns_state == DnsState.VERIFIED:
            owed.fulfil(platform.jobs.filter(kind=JobKind.DNS_CHECK))
        else:
            _owe_once(platform, JobKind.DNS_CHECK, due_at=_next_dns_check(platform))
    return platform


@transaction.atomic
def platform_dns_assist_retry(*, platform_id: int, actor: str) -> Platform:
    platform = _locked(platform_id)
    if not platform.dns_assist or platform.dns_state != DnsState.ERROR:
        raise TransitionNotAllowed("DNS Assist can only be retried after an error.")
    _dns_state(platform, DnsState.PENDING, actor, "DNS Assist retried.")
    _owe_once(platform, JobKind.DNS_ASSIST)
    return platform


def _owe_once(platform: Platform, kind: str, *, due_at=None) -> None:
    """Owe the job unless one of its kind is already owed."""
    job = Job(platform=platform, kind=kind, due_at=due_at or timezone.now())
    owed.owe_once(job, among=platform.jobs.filter(kind=kind))


# Step 4: the certificate.


def _dcv_email(platform: Platform, code: str, *, resend_of: Email | None, actor: str) -> None:
    """The certificate authority's email (in English, as the CA writes it)."""
    order = platform.certificate
    _queue_platform_email(
        platform,
        "dcv",
        recipient=platform.validation_email,
        language="en",
        extra={
            "order_number": platform.order_number,
            "server_name": platform.server_name,
            "validation_email": platform.validation_email,
            "code": code,
            "dcv_url": links.dcv_url(platform),
            "expires_at": order.dcv_code_expires_at,
            "max_attempts": settings.DCV_MAX_ATTEMPTS,
        },
        sender=settings.DCV_FROM_EMAIL,
        resend_of=resend_of,
        actor=actor,
    )


@transaction.atomic
def platform_certificate_request(*, platform_id: int) -> None:
    """Key, CSR and certificate order; then validation by email (internal CA) or DNS-01."""
    platform = _locked(platform_id)
    if platform.state != PlatformState.CONFIGURED:
        return
    order = certificate_order_create(
        server_name=platform.server_name,
        validation_email=platform.validation_email,
        order_number=platform.order_number,
    )
    platform.certificate = order
    platform.request_certificate()
    _moved(platform, SYSTEM, f"Certificate order #{platform.order_number} ({order.backend}).")
    if order.backend == Backend.INTERNAL:
        _dcv_email(platform, dcv_code_issue(order=order), resend_of=None, actor=SYSTEM)
    elif platform.dns_assist:
        _owe(platform, JobKind.ACME_DNS)
    else:
        _owe(platform, JobKind.ACME_MANUAL)


def _certificate_issued(platform: Platform, actor: str) -> None:
    """certificate_pending → certificate_issued → finalising, in the caller's transaction."""
    order = platform.certificate
    platform.issue_certificate()
    _moved(platform, actor, f"Serial {order.serial}, valid until {order.not_after:%Y-%m-%d}.")
    due_at = timezone.now() + timedelta(seconds=settings.FINALISATION_DELAY)
    platform.finalise(due_at=due_at)
    _moved(platform, SYSTEM, f"Ready at {due_at:%Y-%m-%d %H:%M} UTC at the latest.")
    _owe(platform, JobKind.FINALISE, due_at=due_at)


@transaction.atomic
def platform_dcv_submit(*, platform_id: int, code: str, actor: str) -> DcvResult:
    """The customer pasted the validation code: a right one issues the certificate."""
    platform = _locked(platform_id)
    if platform.certificate is None:
        raise TransitionNotAllowed("No certificate order yet.")
    result = dcv_code_verify(order_id=platform.certificate_id, code=code)
    if result.outcome != DcvOutcome.VALID:
        _record(platform, f"dcv_{result.outcome}", actor, _dcv_words(result))
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
    platform = _locked(platform_id)
    if platform.state != PlatformState.CERTIFICATE_PENDING or platform.certificate is None:
        raise TransitionNotAllowed("The certificate is not waiting for validation.")
    if platform.certificate.backend != Backend.INTERNAL:
        raise TransitionNotAllowed("This certificate is validated through DNS, not by e-mail.")
    if address and address != platform.validation_email:
        if address not in validation_addresses(platform.domain):
            raise SetupRefused("validation_email", "Choose one of the offered addresses.")
        validation_email_change(order_id=platform.certificate_id, address=address)
        platform.validation_email = address
        platform.save(update_fields=["validation_email", "updated_at"])
        _record(platform, "validation_email_changed", actor, f"Validation address: {address}.")
    code = dcv_code_issue(order=platform.certificate)
    original = platform.emails.filter(kind="dcv", resend_of=None).first()
    _dcv_email(platform, code, resend_of=original, actor=actor)


def platform_acme_dns(*, platform_id: int) -> None:
    """ACME with DNS Assist: the DNS-01 record written and removed by the portal."""
    platform = Platform.objects.select_related("account", "certificate").get(pk=platform_id)
    if platform.state != PlatformState.CERTIFICATE_PENDING:
        return
    zone = managed_zone(platform.account, platform.domain)
    if zone is None:
        raise StageError(f"The zone of {platform.domain} is no longer managed.", transient=False)
    try:
        acme_certificate_obtain(
            order_id=platform.certificate_id, dns_writer=get_writer(), zone=zone.name
        )
    except (AcmeError, DnsError) as error:
        raise StageError(error.message, transient=error.transient) from error
    except CertificateOrderError as error:
        raise StageError(str(error), transient=False) from error
    _acme_issued(platform_id)


def platform_acme_manual(*, platform_id: int):
    """ACME without DNS Assist: the customer adds the TXT record shown on the status page;
    the order is completed once the record is served. Returns when to look again."""
    platform = Platform.objects.select_related("certificate").get(pk=platform_id)
    if platform.state != PlatformState.CERTIFICATE_PENDING:
        return None
    if platform.certificate.status == platform.certificate.Status.ISSUED:
        # Issued by an attempt cut short before the platform moved on: only that is left.
        _acme_issued(platform_id)
        return None
    try:
        record = acme_manual_challenge(order_id=platform.certificate_id)
        if not txt_record_served(name=record.name, value=record.value):
            return timezone.now() + timedelta(seconds=settings.DNS_CHECK_INTERVAL)
        acme_manual_complete(order_id=platform.certificate_id)
    except (AcmeError, DnsError) as error:
        raise StageError(error.message, transient=error.transient) from error
    except CertificateOrderError as error:
        raise StageError(str(error), transient=False) from error
    _acme_issued(platform_id)
    return None


def _acme_issued(platform_id: int) -> None:
    with transaction.atomic():
        platform = _locked(platform_id)
        if platform.state == PlatformState.CERTIFICATE_PENDING:
            _certificate_issued(platform, SYSTEM)


# Step 5: finalisation.


@transaction.atomic
def platform_make_ready(*, platform_id: int):
    """Finalisation over: the platform is ready and the ready email goes out."""
    platform = _locked(platform_id)
    if platform.state != PlatformState.FINALISING:
        return None
    if platform.due_at and platform.due_at > timezone.now():
        return platform.due_at
    platform.make_ready()
    _moved(platform, SYSTEM, "Finalisation complete.")
    _queue_platform_email(platform, "ready")
    return None


# Resends by a person (support, operators).

RESENDABLE_KINDS = ("delivery", "dns_instructions", "dcv", "ready")


@transaction.atomic
def platform_email_resend(
    *, platform_id: int, kind: str, actor: str, address: str | None = None
) -> None:
    """Send a service email again, rendered anew (a fresh link; for validation, a new code,
    to `address` when it is another of the offered ones)."""
    if kind == "dcv":
        platform_dcv_resend(platform_id=platform_id, actor=actor, address=address)
        return
    platform = _locked(platform_id)
    original = platform.emails.filter(kind=kind, resend_of=None).first()
    if kind not in RESENDABLE_KINDS or original is None:
        raise TransitionNotAllowed(f"No {kind} email was sent for {platform.service}.")
    _queue_platform_email(
        platform, kind, recipient=original.recipient, resend_of=original, actor=actor
    )


def _stage_job(platform: Platform) -> str | None:
    """The job that moves the platform out of its state, when no person has to act."""
    if platform.state == PlatformState.CERTIFICATE_PENDING:
        if platform.certificate is None or platform.certificate.backend == Backend.INTERNAL:
            return None  # waiting for the customer's code
        return JobKind.ACME_DNS if platform.dns_assist else JobKind.ACME_MANUAL
    return {
        PlatformState.ORDERED: JobKind.DELIVER,
        PlatformState.CONFIGURED: JobKind.CERTIFICATE,
        PlatformState.FINALISING: JobKind.FINALISE,
    }.get(platform.state)
