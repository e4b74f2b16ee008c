"""Step 2 of the guide, initialisation: the server name, the validation address and DNS
Assist, chosen by the customer; then the DNS and certificate stages are owed."""

from django.conf import settings
from django.db import transaction

from outbox import owed
from provisioning.errors import Refused
from provisioning.models import JobKind, Platform, PlatformState, ValidationMethod
from provisioning.rules import setup_choices_check
from provisioning.selectors import SetupFacts, domain_held, setup_facts
from provisioning.services import dns
from provisioning.services.common import SYSTEM, locked, moved, owe_job
from zones.names import InvalidDomainName, normalise_domain

DOMAIN_IN_USE = "This domain is already used by another platform."


def _facts(platform: Platform, domain: str) -> SetupFacts:
    try:
        domain = normalise_domain(domain)
    except InvalidDomainName:
        domain = ""  # setup_choices_check says what is wrong with it
    return setup_facts(platform, domain)


@transaction.atomic
def platform_configure(
    *,
    platform_id: int,
    actor: str,
    subdomain: str,
    domain: str,
    validation_email: str,
    dns_assist: bool,
    validation_method: str = ValidationMethod.EMAIL,
) -> Platform:
    """The customer's choices, checked again under the row lock (the form's check, so
    that two submissions at once or a stale form change nothing)."""
    platform = locked(platform_id)
    if platform.state != PlatformState.AWAITING_SETUP:
        raise Refused(None, "This platform is already configured.")
    facts = _facts(platform, domain)  # the zones and the domain's holders, in one query
    choices = setup_choices_check(
        subdomain=subdomain,
        domain=domain,
        validation_email=validation_email,
        dns_assist=dns_assist,
        offered_subdomains=settings.SERVER_SUBDOMAINS,
        managed_zones=facts.own_zones,
        foreign_zones=facts.foreign_zones,
    )
    if facts.held:  # choices.domain is the domain normalised, as read
        raise Refused("domain", DOMAIN_IN_USE)
    if validation_method not in ValidationMethod.values:
        raise Refused("validation_method", "Choose e-mail or DNS record.")
    platform.validation_method = validation_method
    platform.domain = choices.domain
    platform.server_name = choices.server_name
    platform.validation_email = choices.validation_email
    platform.dns_assist = choices.dns_assist
    platform.configure()
    moved(
        platform,
        actor,
        f"Server name {choices.server_name}, validation address "
        f"{choices.validation_email}, DNS Assist {'on' if dns_assist else 'off'}, "
        f"validation by {platform.get_validation_method_display()}.",
    )
    dns.platform_dns_start(platform, actor)
    owe_job(platform, JobKind.CERTIFICATE)
    return platform


DOMAIN_TAKEN = (
    "Another platform proved control of this domain first, and now holds it: choose "
    "another name for your server."
)


def platform_choose_again(platform: Platform, actor: str) -> None:
    """Another platform proved control of this one's domain first (in the caller's
    transaction, the platform locked): back to setup, its owed work no longer owed."""
    domain = platform.domain
    platform.choose_again()
    moved(platform, actor, f"{domain} is held by another platform: another name is to be chosen.")
    owed.cancel_open(platform.jobs.all(), reason=f"{domain} is held by another platform")


def platforms_release_domain(holder: Platform) -> None:
    """The holder proved control of its domain: the platforms still waiting for
    validation on it go back to setup. One busy elsewhere (locked) finds out at its next
    step (platform_domain_lost)."""
    waiting = (
        Platform.objects.select_for_update(skip_locked=True)
        .select_related("account")
        .filter(
            domain=holder.domain,
            state__in=[PlatformState.CONFIGURED, PlatformState.CERTIFICATE_PENDING],
        )
        .exclude(pk=holder.pk)
    )
    for platform in waiting:
        platform_choose_again(platform, SYSTEM)


def platform_domain_lost(platform: Platform) -> bool:
    """Whether another platform holds this one's domain; if so, back to setup (in the
    caller's transaction, the platform locked)."""
    if not domain_held(platform.domain, excluding=platform):
        return False
    platform_choose_again(platform, SYSTEM)
    return True
