"""Step 2 of the guide, initialisation: the server name, the validation address and DNS
Assist, chosen by the customer; then the DNS and certificate stages are owed."""

from django.conf import settings
from django.db import IntegrityError, transaction

from provisioning.errors import Refused
from provisioning.models import JobKind, Platform, PlatformState
from provisioning.rules import setup_choices_check
from provisioning.selectors import domain_in_use
from provisioning.services import dns
from provisioning.services.common import locked, moved, owe_job

DOMAIN_IN_USE = "This domain is already used by another platform."


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
    """The customer's choices, checked again under the row lock (the form's check, so
    that two submissions at once or a stale form change nothing)."""
    platform = locked(platform_id)
    if platform.state != PlatformState.AWAITING_SETUP:
        raise Refused(None, "This platform is already configured.")
    choices = setup_choices_check(
        subdomain=subdomain,
        domain=domain,
        validation_email=validation_email,
        dns_assist=dns_assist,
        offered_subdomains=settings.SERVER_SUBDOMAINS,
        managed_zones=platform.account.zones.values_list("name", flat=True),
    )
    if domain_in_use(choices.domain, excluding=platform):
        raise Refused("domain", DOMAIN_IN_USE)
    platform.domain = choices.domain
    platform.server_name = choices.server_name
    platform.validation_email = choices.validation_email
    platform.dns_assist = choices.dns_assist
    platform.configure()
    try:
        with transaction.atomic():
            moved(
                platform,
                actor,
                f"Server name {choices.server_name}, validation address "
                f"{choices.validation_email}, DNS Assist {'on' if dns_assist else 'off'}.",
            )
    except IntegrityError:
        raise Refused("domain", DOMAIN_IN_USE) from None
    dns.platform_dns_start(platform, actor)
    owe_job(platform, JobKind.CERTIFICATE)
    return platform
