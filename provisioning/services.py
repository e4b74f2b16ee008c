"""Every write of the provisioning app. Each transition is one function that runs in one
transaction, records its event and defers its side effects until commit."""

import secrets
import string

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications import outbox
from notifications.services import email_queue
from provisioning import addresses, links
from provisioning.models import (
    ACTIVE_STATES,
    Account,
    Job,
    JobKind,
    Platform,
    PlatformEvent,
    PlatformState,
    Zone,
)
from provisioning.selectors import domain_in_use, managed_zone
from zones.names import InvalidDomainName, normalise_domain

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
    from provisioning.tasks import run_job

    job = Job.objects.create(platform=platform, kind=kind, due_at=due_at or timezone.now())
    outbox.dispatch_on_commit(run_job, job)
    return job


def _moved(platform: Platform, actor: str, message: str = "") -> None:
    """Save a platform whose transition method just ran, with its event."""
    platform.state_changed_at = timezone.now()
    platform.save()
    _record(platform, platform.state, actor, message)


def _locked(platform_id: int) -> Platform:
    return Platform.objects.select_for_update().select_related("account").get(pk=platform_id)


def _queue_platform_email(platform: Platform, kind: str, recipient: str, context: dict) -> None:
    email = email_queue(
        target=platform,
        kind=kind,
        recipient=recipient,
        language=platform.account.language,
        context={"platform": platform, "account": platform.account, **context},
    )
    _record(platform, f"email_{kind}", SYSTEM, f"“{email.subject}” queued for {recipient}.")


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
    _queue_platform_email(
        platform,
        "delivery",
        platform.account.email,
        {"setup_url": links.setup_url(platform), "link_days": settings.SETUP_LINK_MAX_AGE // 86400},
    )


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
    return platform


@transaction.atomic
def platform_fail(*, platform_id: int, reason: str, actor: str = SYSTEM) -> None:
    platform = _locked(platform_id)
    if platform.state not in ACTIVE_STATES:
        return
    platform.fail(reason=reason)
    _moved(platform, actor, reason)


@transaction.atomic
def platform_retry(*, platform_id: int, actor: str) -> Platform:
    """The operator's retry: back to the stage that failed, whose job is owed again."""
    platform = _locked(platform_id)
    platform.resume()
    _moved(platform, actor, "Retried by an operator.")
    stage_job = STAGE_JOBS.get(platform.state)
    if stage_job and not platform.jobs.filter(kind=stage_job, status__in=["pending", "running"]):
        _owe(platform, stage_job)
    return platform


@transaction.atomic
def platform_cancel(*, platform_id: int, actor: str) -> Platform:
    platform = _locked(platform_id)
    platform.cancel()
    _moved(platform, actor, "Cancelled.")
    platform.jobs.filter(status__in=["pending", "running"]).update(
        status="failed", last_error="Platform cancelled", finished_at=timezone.now()
    )
    return platform


# The job that moves a platform out of each automatic state.
STAGE_JOBS = {PlatformState.ORDERED: JobKind.DELIVER}

JOB_HANDLERS = {JobKind.DELIVER: platform_deliver}
