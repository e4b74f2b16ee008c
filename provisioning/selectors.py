"""Reads of the provisioning app."""

from provisioning.models import Account, Platform, PlatformState, Zone
from zones.names import parent_domains


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
