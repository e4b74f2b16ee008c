"""Reads of the provisioning app."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import BigIntegerField, BooleanField, ExpressionWrapper, Q, QuerySet, Value
from django.utils import timezone

from certificates.models import IN_USE, CertificateOrder
from certificates.policy import EXPIRING_WITHIN
from certificates.selectors import acme_txt_record, dns_validation_record
from outbox.search import MANY_ROWS, estimated_rows, order_number_of, search_words
from provisioning.models import BAD, HOLDS_DOMAIN, Account, Domain, DomainMode, Platform, Zone
from provisioning.rules import RESENDABLE_KINDS, zone_managing
from provisioning.states import DOMAIN_HOLDING_STATES_OF_DOMAINS, PLATFORM, DomainState
from zones.mail import (
    MailRecords,
    ServedMail,
    mail_records,
    ownership_record,
    parse_mail_exchangers,
    render_zone_snippet,
)
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


@dataclass(frozen=True)
class SetupFacts:
    """What the setup's checks read, for one domain: the account's zones, the zones other
    accounts manage that contain the domain (A-labels), and whether another platform holds
    the domain."""

    own_zones: list[str]
    foreign_zones: list[str]
    held: bool


def setup_facts(platform: Platform, domain: str) -> SetupFacts:
    """zones_for_setup and domain_held in one query (a UNION: the platforms holding the
    domain come as rows without an account)."""
    account_id = platform.account_id
    containing = parent_domains(domain) if domain else []
    rows = Zone.objects.filter(Q(account_id=account_id) | Q(name__in=containing)).values_list(
        "name", "account_id"
    )
    if domain:
        holders = (
            Platform.objects.filter(HOLDS_DOMAIN, domain=domain)
            .exclude(pk=platform.pk)
            .values_list("domain", Value(None, output_field=BigIntegerField()))
        )
        rows = rows.order_by().union(holders.order_by(), all=True)
    own, foreign, held = [], [], False
    for name, owner in sorted(rows, key=lambda row: (row[0], row[1] or 0)):
        if owner is None:
            held = True
        elif owner == account_id:
            own.append(name)
        else:
            foreign.append(name)
    return SetupFacts(own_zones=own, foreign_zones=foreign, held=held)


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


# The customer's mail domains


def authoritative_domains_elsewhere(platform: Platform, name: str) -> list[str]:
    """[name] when another platform of the portal holds it authoritatively, else []."""
    held = Domain.objects.filter(
        name=name,
        mode=DomainMode.AUTHORITATIVE,
        removed_at=None,
        state__in=DOMAIN_HOLDING_STATES_OF_DOMAINS,
    ).exclude(platform=platform)
    return [name] if held.exists() else []


def domain_served(domain: Domain) -> ServedMail:
    """What the domain served at its last check (an SPF record to merge into, a DMARC)."""
    served = domain.served or {}
    return ServedMail(spf=served.get("spf"), has_dmarc=bool(served.get("has_dmarc")))


def domain_mail_records(domain: Domain, *, served: ServedMail | None = None) -> MailRecords:
    """What the domain needs for mail on its platform, from the platform and settings."""
    platform = domain.platform
    return mail_records(
        domain=domain.name,
        zone=domain.zone or domain.name,
        server_name=platform.server_name,
        ipv4=platform.ipv4,
        ipv6=platform.ipv6,
        exchangers=parse_mail_exchangers(
            settings.MAIL_EXCHANGERS, server_name=platform.server_name
        ),
        dkim={key.selector: key.public_key for key in domain.dkim_keys.all()},
        served=served if served is not None else domain_served(domain),
        ttl=settings.DNS_RECORD_TTL,
    )


def domain_expected(domain: Domain, *, served: ServedMail | None = None) -> tuple:
    """The mail records, and every record to check: the ownership CNAME first while it is
    needed."""
    mail = domain_mail_records(domain, served=served)
    records = mail.records
    if domain.state == DomainState.PENDING_OWNERSHIP:
        ownership = ownership_record(
            domain=domain.name,
            zone=domain.zone or domain.name,
            token=domain.ownership_token,
            target=settings.DOMAIN_CHECK_TARGET,
            ttl=settings.DNS_RECORD_TTL,
        )
        records = (ownership, *records)
    return mail, records


def _record_key(purpose: str, name: str, rtype: str, value: str) -> tuple:
    # An SPF record's value changes with merges: it is one record whatever it holds.
    return purpose, name, rtype, "" if purpose == "spf" else value


def domain_records_table(domain: Domain) -> list[dict]:
    """Each record the domain needs, with what the last check found (status "unchecked"
    before the first)."""
    checked = {
        _record_key(row["purpose"], row["name"], row["type"], row["value"]): row
        for row in domain.records
    }
    _mail, expected = domain_expected(domain)
    rows = []
    for record in expected:
        found = checked.get(_record_key(record.purpose, record.name, record.rtype, record.value))
        rows.append(
            {
                "purpose": str(record.purpose),
                "name": record.name,
                "name_display": display_domain(record.name),
                "relative_name": record.relative,
                "type": record.rtype,
                "value": record.value,
                "ttl": record.ttl,
                "required": record.required,
                "status": found["status"] if found else "unchecked",
                "found": found["found"] if found else None,
            }
        )
    return rows


def domain_zone_snippet(domain: Domain) -> str:
    mail, expected = domain_expected(domain)
    return render_zone_snippet(mail, extra=expected[: len(expected) - len(mail.records)])


def current_domains(domains: QuerySet) -> QuerySet:
    """Domains not being removed, with their DKIM keys; also a Prefetch's queryset (to_attr
    "current_domains") for a page of platforms, so that a page costs the same queries."""
    return domains.filter(removed_at=None).prefetch_related("dkim_keys")


def domains_summary(platform: Platform) -> list[dict]:
    """The API's contract: [{"name", "mode", "state", "records": [{"name", "type", "value",
    "status"}]}], names as A-labels, the ownership CNAME while it is needed."""
    domains = getattr(platform, "current_domains", None)
    if domains is None:
        domains = list(current_domains(platform.domains.all()))
    for domain in domains:
        domain.platform = platform
    return [
        {
            "name": domain.name,
            "mode": domain.mode,
            "state": domain.state,
            "records": [
                {key: row[key] for key in ("name", "type", "value", "status")}
                for row in domain_records_table(domain)
            ],
        }
        for domain in domains
    ]


def domains_page(platform: Platform) -> list[Domain]:
    """The platform's domains, each with its records table and its count of bad records."""
    domains = list(platform.domains.filter(removed_at=None).prefetch_related("dkim_keys"))
    for domain in domains:
        domain.platform = platform
        domain.table = domain_records_table(domain)
        domain.bad = sum(1 for row in domain.table if row["required"] and row["status"] in BAD)
    return domains


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


# The admin's search. Each word the operator types (a quoted phrase is one word, as in
# Django's admin) must be found, in any case, inside one of these fields, or be the order
# number. On PostgreSQL a trigram index on each side (migration 0012) serves the "inside"
# as it serves a prefix or a whole value, so the search reads the index, not the table.
PLATFORM_SEARCHED = ("service", "domain", "server_name", "validation_email")
ACCOUNT_SEARCHED = ("nic", "email")


def platforms_matching(platforms: QuerySet, text: str, *, broad: bool | None = None) -> QuerySet:
    """The platforms in which every word of `text` is found (see PLATFORM_SEARCHED).

    Two ways to the same rows. Few matches (a service, a domain, an address): every match
    is collected from the indexes, the platform's own fields and the account's, as a UNION
    of ids; an OR across the join would make PostgreSQL read every platform to test it.
    Many matches (`broad`, by default when PostgreSQL estimates MANY_ROWS or more): the
    changelist's index is read from the newest platform and each is tested, the accounts
    found once; a page of 100 is full after a few hundred rows instead of after collecting
    and sorting every match."""
    words = [_word_matching(word) for word in search_words(text)]
    if broad is None:
        # Every word must match: the rarest one bounds the matches. all() stops at the
        # first word under MANY_ROWS (usually the only one: one EXPLAIN, nothing read).
        broad = bool(words) and all((estimated_rows(ids) or 0) >= MANY_ROWS for ids, _, _ in words)
    for _, few, many in words:
        platforms = platforms.filter(many if broad else few)
    return platforms


def _word_matching(word: str) -> tuple[QuerySet, Q, Q]:
    """The ids of the platforms in which the word is found (with repeats), and the
    condition they meet: for few matches, for many."""
    own = Q.create([(f"{name}__icontains", word) for name in PLATFORM_SEARCHED], connector=Q.OR)
    number = order_number_of(word)
    if number is not None:
        own |= Q(order_number=number)
    accounts = Account.objects.filter(
        Q.create([(f"{name}__icontains", word) for name in ACCOUNT_SEARCHED], connector=Q.OR)
    ).values("pk")
    ids = (
        Platform.objects.filter(own)
        .order_by()
        .values("pk")
        .union(Platform.objects.filter(account__in=accounts).order_by().values("pk"), all=True)
    )
    return ids, Q(pk__in=ids), own | Q(account__in=accounts)
