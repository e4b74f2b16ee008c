"""Reads of the provisioning app."""

from django.conf import settings
from django.utils import timezone

from certificates.selectors import acme_txt_record
from provisioning.models import Account, Platform, PlatformState, Zone
from zones.names import display_domain, parent_domains


def managed_zone(account: Account, name: str) -> Zone | None:
    """The account's zone that is the longest suffix of name (the name itself included)."""
    candidates = parent_domains(name)
    zones = {zone.name: zone for zone in account.zones.filter(name__in=candidates)}
    return next((zones[c] for c in candidates if c in zones), None)


def domain_in_use(domain: str, *, excluding: Platform) -> bool:
    return (
        Platform.objects.filter(domain=domain)
        .exclude(pk=excluding.pk)
        .exclude(state=PlatformState.CANCELLED)
        .exists()
    )


def platforms_for_user(user):
    """The platforms of every account the user may log in to."""
    return Platform.objects.filter(account__users=user).select_related("account")


# Seconds between two checks a person may ask for.
DNS_CHECK_NOW_SPACING = 10


def dns_check_allowed(platform: Platform) -> bool:
    checked = platform.dns_checked_at
    return checked is None or (timezone.now() - checked).total_seconds() >= DNS_CHECK_NOW_SPACING


def dns_table(platform: Platform) -> list[dict]:
    """The records the server name needs, with what the last check found."""
    if not platform.server_name:
        return []
    found = {record["rtype"]: record for record in platform.dns_records}
    rows = []
    for rtype, value in (("A", platform.ipv4), ("AAAA", platform.ipv6)):
        checked = found.get(rtype)
        rows.append(
            {
                "name": platform.server_name,
                "name_display": display_domain(platform.server_name),
                # The name as DNS editors that work inside the zone want it (`mail`).
                "relative_name": platform.server_name.removesuffix(f".{platform.domain}"),
                "rtype": rtype,
                "value": value,
                "ttl": settings.DNS_RECORD_TTL,
                "found": checked["found"] if checked else None,
                "status": checked["status"] if checked else "unchecked",
            }
        )
    return rows


def acme_record(platform: Platform):
    """The TXT record the customer must add for ACME without DNS Assist, if any."""
    order = platform.certificate
    if order is None or order.backend != "acme" or platform.dns_assist:
        return None
    return acme_txt_record(order=order)
