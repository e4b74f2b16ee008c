"""Pure checks of what a person chooses, shared by the forms and the services: the form
checks them to answer on the page, the service again under its row lock. No I/O here."""

from collections.abc import Iterable
from dataclasses import dataclass

from provisioning.errors import Refused
from zones.names import InvalidDomainName, normalise_domain, parent_domains

# The constructed addresses a CA may email for validation (BR 3.2.2.4.4).
VALIDATION_LOCAL_PARTS = ("admin", "administrator", "webmaster", "hostmaster", "postmaster")


# The service emails a person may have sent again (rendered anew: a fresh link, a new code).
RESENDABLE_KINDS = ("delivery", "dns_instructions", "dcv", "ready")


def validation_addresses(domain: str) -> list[str]:
    """The addresses offered for email validation of a domain."""
    return [f"{local}@{domain}" for local in VALIDATION_LOCAL_PARTS]


def zone_managing(name: str, zones: Iterable[str]) -> str | None:
    """Of these zone names, the longest suffix of name (the name itself included)."""
    zones = set(zones)
    return next((candidate for candidate in parent_domains(name) if candidate in zones), None)


FOREIGN_ZONE = (
    "The DNS zone of this domain is managed by another customer account: choose a domain "
    "whose zone you manage, or that no account manages."
)


@dataclass(frozen=True)
class SetupChoices:
    domain: str
    server_name: str
    validation_email: str | None
    dns_assist: bool


def setup_choices_check(
    *,
    subdomain: str,
    domain: str,
    validation_email: str | None,
    dns_assist: bool,
    offered_subdomains: Iterable[str],
    managed_zones: Iterable[str],
    foreign_zones: Iterable[str] = (),
) -> SetupChoices:
    """The setup form's choices, normalised (A-labels), or Refused on the first wrong one.

    A domain inside a zone another account manages (`foreign_zones`, unless one of the
    account's own zones lies deeper) is not the customer's to choose; DNS Assist needs the
    domain's zone managed on the account (`managed_zones`). A form
    whose address is not chosen yet passes None (it reports that itself)."""
    if subdomain not in offered_subdomains:
        raise Refused("subdomain", "Choose one of the offered sub-domains.")
    try:
        domain = normalise_domain(domain)
        server_name = normalise_domain(f"{subdomain}.{domain}")
    except InvalidDomainName as error:
        raise Refused("domain", str(error)) from None
    managed_zones, foreign_zones = set(managed_zones), set(foreign_zones)
    if validation_email is not None and validation_email not in validation_addresses(domain):
        raise Refused("validation_email", "Choose one of the offered addresses.")
    if dns_assist and zone_managing(domain, managed_zones) is None:
        raise Refused(
            "dns_assist", "DNS Assist needs the domain's zone to be managed on this account."
        )
    if zone_managing(domain, managed_zones | foreign_zones) in foreign_zones:
        raise Refused("domain", FOREIGN_ZONE)
    return SetupChoices(domain, server_name, validation_email, dns_assist)


# A customer's mail domains.

AUTHORITATIVE_ELSEWHERE = (
    "This domain is authoritative on another platform: switch that one to non-authoritative first."
)
DOMAIN_MODES = ("authoritative", "non_authoritative")


@dataclass(frozen=True)
class DomainChoices:
    name: str
    zone: str  # the account's zone holding the name, "" when none does
    mode: str
    relay_host: str
    dns_assist: bool


def domain_mode_check(*, mode: str, relay_host: str) -> tuple[str, str]:
    """The mode and its relay host (A-label; required only when the domain is shared)."""
    if mode not in DOMAIN_MODES:
        raise Refused("mode", "Choose authoritative or non-authoritative.")
    if mode == "authoritative":
        return mode, ""
    if not relay_host.strip():
        raise Refused(
            "relay_host",
            "Give the host name of the other mail server that receives this domain's mail.",
        )
    try:
        return mode, normalise_domain(relay_host)
    except InvalidDomainName as error:
        raise Refused("relay_host", str(error)) from None


def domain_choices_check(
    *,
    name: str,
    mode: str,
    relay_host: str,
    dns_assist: bool,
    managed_zones: Iterable[str],
    on_platform: Iterable[str],
    authoritative_elsewhere: Iterable[str],
    limit: int,
) -> DomainChoices:
    """The domain form's choices, normalised, or Refused on the first wrong one: a name once
    per platform, at most ``limit`` of them, authoritative on one platform of the portal,
    DNS Assist only inside a zone of the account."""
    try:
        name = normalise_domain(name)
    except InvalidDomainName as error:
        raise Refused("domain", str(error)) from None
    mode, relay_host = domain_mode_check(mode=mode, relay_host=relay_host)
    on_platform = set(on_platform)
    if name in on_platform:
        raise Refused("domain", "This domain is already on this platform.")
    if len(on_platform) >= limit:
        raise Refused(
            "domain", "This platform has as many domains as it may have: remove one first."
        )
    if mode == "authoritative" and name in set(authoritative_elsewhere):
        raise Refused("mode", AUTHORITATIVE_ELSEWHERE)
    zone = zone_managing(name, managed_zones) or ""
    if dns_assist and not zone:
        raise Refused(
            "dns_assist", "DNS Assist needs the domain to be inside a zone managed on this account."
        )
    return DomainChoices(name, zone, mode, relay_host, dns_assist)
