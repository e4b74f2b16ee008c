"""Reads of the provisioning app."""

from datetime import timedelta

from django.conf import settings
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.utils import timezone

from certificates.models import IN_USE, CertificateOrder
from certificates.policy import EXPIRING_WITHIN
from certificates.selectors import acme_txt_record, dns_validation_record
from provisioning.models import HOLDS_DOMAIN, Account, Platform, Zone
from provisioning.rules import RESENDABLE_KINDS, zone_managing
from provisioning.states import PLATFORM
from zones.names import display_domain, parent_domains


def managed_zone(account: Account, name: str) -> Zone | None:
    """The account's zone that is the longest suffix of name (the name itself included)."""
    zones = {zone.name: zone for zone in account.zones.filter(name__in=parent_domains(name))}
    found = zone_managing(name, zones)
    return zones[found] if found else None


def domain_held(domain: str, *, excluding: Platform) -> bool:
    """Whether another platform proved control of the domain (its certificate is issued).
    Only that holds a name: choosing it proves nothing."""
    others = Platform.objects.filter(HOLDS_DOMAIN, domain=domain).exclude(pk=excluding.pk)
    return others.exists()


def zones_for_setup(account: Account, domain: str) -> tuple[list[str], list[str]]:
    """The account's zones, and the zones other accounts manage that contain the domain
    (A-labels; "" for none yet), in one query: what setup_choices_check needs."""
    containing = parent_domains(domain) if domain else []
    zones = Zone.objects.filter(Q(account=account) | Q(name__in=containing))
    rows = list(zones.values_list("name", "account_id"))
    own = [name for name, owner in rows if owner == account.pk]
    return own, [name for name, owner in rows if owner != account.pk]


def platforms_for_user(user):
    """The platforms of every account the user may log in to."""
    return Platform.objects.filter(account__users=user).select_related("account")


def platforms_shown_to(user):
    """The platforms the customer's space lists (the guide hides those being finalised)."""
    return platforms_for_user(user).filter(state__in=PLATFORM.values(customer_sees=True))


def platform_stuck_condition(now=None) -> Q:
    """Platforms in a state for longer than that state is expected to last
    (PLATFORM_STUCK_AFTER, whose defaults are provisioning.states.PLATFORM's)."""
    now = now or timezone.now()
    condition = Q(pk__in=[])
    for state, seconds in settings.PLATFORM_STUCK_AFTER.items():
        condition |= Q(state=state, state_changed_at__lt=now - timedelta(seconds=seconds))
    return condition


def platforms_with_stuck(platforms: QuerySet) -> QuerySet:
    """The platforms, each with `is_stuck` (platform_stuck_condition) to show or filter on."""
    return platforms.annotate(
        is_stuck=ExpressionWrapper(platform_stuck_condition(), output_field=BooleanField())
    )


def email_kinds_resendable(platform: Platform) -> list[str]:
    """The kinds of the emails sent for the platform that a person may have sent again,
    in the order they were first sent."""
    sent = platform.emails.filter(resend_of=None, kind__in=RESENDABLE_KINDS)
    return list(sent.order_by("created_at").values_list("kind", flat=True))


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
    order = certificate_awaiting(platform)
    if order is None or order.backend != "acme" or platform.dns_assist:
        return None
    return acme_txt_record(order=order)


# Certificates: Platform.certificate is the current one (the first order until it is
# issued, then the certificate in force); a renewal is an order whose renewal_of is it.

AWAITING = [CertificateOrder.Status.PENDING, CertificateOrder.Status.FAILED]


def current_certificate(platform: Platform) -> CertificateOrder | None:
    """The certificate the platform's server uses (or the first order, before issuance)."""
    return platform.certificate


def certificate_renewal(platform: Platform) -> CertificateOrder | None:
    """The renewal of the current certificate, if one was started."""
    if platform.certificate_id is None:
        return None
    return CertificateOrder.objects.filter(renewal_of_id=platform.certificate_id).first()


def certificate_awaiting(platform: Platform) -> CertificateOrder | None:
    """The order waiting for validation: the first one, or the current one's renewal."""
    order = platform.certificate
    if order is None:
        return None
    if order.status in AWAITING:
        return order
    renewal = certificate_renewal(platform)
    return renewal if renewal is not None and renewal.status in AWAITING else None


def certificate_dns_record(order: CertificateOrder | None) -> dict | None:
    """The TXT record proving control by DNS record, as the status page shows it."""
    record = dns_validation_record(order=order) if order is not None else None
    if record is None:
        return None
    server_name = order.server_name
    zone_apex = server_name.split(".", 1)[1] if "." in server_name else server_name
    return {
        "name": record.name,
        "relative_name": record.name.removesuffix(f".{zone_apex}"),
        "type": "TXT",
        "value": record.value,
    }


def certificate_history(platform: Platform) -> list[CertificateOrder]:
    """Every certificate order of the platform, newest first: the renewal under way, the
    current one, then those it replaced."""
    orders = []
    order = certificate_renewal(platform) or platform.certificate
    while order is not None:
        orders.append(order)
        order = order.renewal_of
    return orders


def certificate_expiring_condition(now=None) -> Q:
    """Platforms whose certificate in use ends within EXPIRING_WITHIN, or has ended, and
    was not replaced (a renewal in force becomes the platform's certificate)."""
    now = now or timezone.now()
    in_use_ending = Q(
        certificate__status__in=IN_USE, certificate__not_after__lte=now + EXPIRING_WITHIN
    )
    ended = Q(certificate__status=CertificateOrder.Status.EXPIRED) | Q(
        certificate__status__in=IN_USE, certificate__not_after__lte=now
    )
    return in_use_ending | ended


def certificate_flag(order: CertificateOrder | None, now=None) -> str:
    """ "expired", "expiring" (within EXPIRING_WITHIN) or "" for a certificate in use."""
    if order is None or order.not_after is None:
        return ""
    now = now or timezone.now()
    if order.status == CertificateOrder.Status.EXPIRED or order.not_after <= now:
        return "expired"
    if order.status in IN_USE and order.not_after <= now + EXPIRING_WITHIN:
        return "expiring"
    return ""
