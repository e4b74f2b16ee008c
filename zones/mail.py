"""The records a customer's mail domain needs on a platform: pure, no I/O.

From plain values (the domain and its zone, the platform's server name and addresses, the
MAIL_EXCHANGERS setting, the DKIM public keys and what the zone already serves) this says
which records the domain must have: MX, the autodiscover SRV, SPF (merged into an existing
SPF record, never a second one: RFC 7208 section 3.2), DKIM, DMARC (only suggested), and the
ownership CNAME of a domain outside the account's zones. Names are A-labels without the
final dot; values are in the form ``zones.records.record_value`` gives.
"""

import base64
import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import dns.name
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from zones.names import InvalidDomainName, normalise_domain
from zones.records import InvalidValue, record_rdata, zone_name

DEFAULT_MX_PRIORITY = 10
MAX_MX_PRIORITY = 65535
AUTODISCOVER_SERVICE = "_autodiscover._tcp"
AUTODISCOVER_PORT = 443
SPF_VERSION = "v=spf1"
# A soft fail for everyone else: the customer's other senders, not yet listed, are not
# rejected outright (the qualifier of an existing record is kept as it is).
SPF_DEFAULT_ALL = "~all"
DMARC_NAME = "_dmarc"
DMARC_SUGGESTED = "v=DMARC1; p=none"
DKIM_NAME = "_domainkey"
OWNERSHIP_SUFFIX = "-check"
# RFC 6376 3.1: a selector is one or more LDH labels.
_SELECTOR = re.compile(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
# "{token}-check" is one label of at most 63 octets.
_OWNERSHIP_TOKEN = re.compile(r"^[a-z0-9]{1,57}$")
# 128 bits, one token per claim: a CNAME left for an earlier claim proves nothing for a new one.
OWNERSHIP_TOKEN_BYTES = 16
_SPF_MODIFIER = re.compile(r"^[a-z][a-z0-9_.-]*=", re.IGNORECASE)
_SPF_ALL = re.compile(r"^[+?~-]?all$", re.IGNORECASE)


class RecordPurpose(StrEnum):
    OWNERSHIP = "ownership"
    MX = "mx"
    AUTODISCOVER = "autodiscover"
    SPF = "spf"
    DKIM = "dkim"
    DMARC = "dmarc"


@dataclass(frozen=True)
class MailExchanger:
    host: str
    priority: int

    @property
    def value(self) -> str:
        return f"{self.priority} {self.host}"


@dataclass(frozen=True)
class ExpectedRecord:
    purpose: RecordPurpose
    name: str  # absolute
    relative: str  # to the zone; "@" for the zone's apex
    rtype: str
    value: str
    ttl: int
    # A missing DMARC record is a warning, not an error: it does not keep a domain inactive.
    required: bool = True


@dataclass(frozen=True)
class ServedMail:
    """What the domain already serves that changes the expected records."""

    spf: str | None = None  # its SPF record
    has_dmarc: bool = False


@dataclass(frozen=True)
class MailRecords:
    """A domain's expected records, with what the checks and DNS Assist compare by."""

    domain: str
    zone: str
    records: tuple[ExpectedRecord, ...]
    spf_mechanisms: tuple[str, ...]  # ours, which the SPF record must include

    def of(self, purpose: RecordPurpose) -> tuple[ExpectedRecord, ...]:
        return tuple(record for record in self.records if record.purpose == purpose)


# MAIL_EXCHANGERS


def parse_mail_exchangers(text: str, *, server_name: str) -> tuple[MailExchanger, ...]:
    """The MX hosts from ``host:priority,...``; the platform's server name at priority 10
    when the setting is empty."""
    if not text.strip():
        return (MailExchanger(host=_host(server_name), priority=DEFAULT_MX_PRIORITY),)
    exchangers = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            raise InvalidValue(
                f"MAIL_EXCHANGERS “{text}” has an empty entry; write host:priority,host:priority."
            )
        host_text, colon, priority_text = entry.partition(":")
        if not colon or not priority_text.strip().isdigit():
            raise InvalidValue(
                f"MAIL_EXCHANGERS: “{entry}” has no priority; write host:priority, "
                "e.g. mx1.example.net:10."
            )
        priority = int(priority_text)
        if priority > MAX_MX_PRIORITY:
            raise InvalidValue(
                f"MAIL_EXCHANGERS: the priority of “{entry}” is above {MAX_MX_PRIORITY}."
            )
        host = _host(host_text)
        if any(exchanger.host == host for exchanger in exchangers):
            raise InvalidValue(f"MAIL_EXCHANGERS names {host} twice.")
        exchangers.append(MailExchanger(host=host, priority=priority))
    return tuple(exchangers)


def _host(text: str) -> str:
    try:
        return normalise_domain(text)
    except InvalidDomainName as error:
        raise InvalidValue(f"“{text.strip()}” is not a host name: {error}") from None


# The expected records


def mail_records(
    *,
    domain: str,
    zone: str,
    server_name: str,
    ipv4: str,
    ipv6: str,
    exchangers: Sequence[MailExchanger],
    dkim: Mapping[str, str],
    served: ServedMail,
    ttl: int,
) -> MailRecords:
    """Every record the domain needs for mail on the platform. ``dkim`` maps each selector
    to its public key (base64, the ``p=`` tag); ``zone`` is the zone holding the domain (the
    domain itself when unknown), which relative names are given to."""
    domain, zone = zone_name(domain), zone_name(zone)
    if not dns.name.from_text(domain).is_subdomain(dns.name.from_text(zone)):
        raise InvalidValue(f"{domain} is not inside the zone {zone}.")
    server_name = _host(server_name)
    mechanisms = spf_mechanisms(ipv4=ipv4, ipv6=ipv6)

    def record(purpose, name, rtype, value, *, required=True) -> ExpectedRecord:
        record_rdata(rtype, value)  # refuses a value no DNS server would take
        return ExpectedRecord(
            purpose=purpose,
            name=name,
            relative=relative_name(name, zone=zone),
            rtype=rtype,
            value=value,
            ttl=ttl,
            required=required,
        )

    records = [record(RecordPurpose.MX, domain, "MX", mx.value) for mx in exchangers]
    records.append(
        record(
            RecordPurpose.AUTODISCOVER,
            f"{AUTODISCOVER_SERVICE}.{domain}",
            "SRV",
            f"0 0 {AUTODISCOVER_PORT} {server_name}",
        )
    )
    spf = spf_merge(served.spf, mechanisms=mechanisms)[0] if served.spf else spf_new(mechanisms)
    records.append(record(RecordPurpose.SPF, domain, "TXT", spf))
    for selector, public_key in sorted(dkim.items()):
        records.append(
            record(
                RecordPurpose.DKIM,
                dkim_name(selector=selector, domain=domain),
                "TXT",
                dkim_value(public_key),
            )
        )
    if not served.has_dmarc:
        records.append(
            record(
                RecordPurpose.DMARC,
                f"{DMARC_NAME}.{domain}",
                "TXT",
                DMARC_SUGGESTED,
                required=False,
            )
        )
    return MailRecords(domain=domain, zone=zone, records=tuple(records), spf_mechanisms=mechanisms)


def ownership_token_new() -> str:
    """A random token for the ownership CNAME's name, lower-case base32 (26 characters)."""
    token = base64.b32encode(secrets.token_bytes(OWNERSHIP_TOKEN_BYTES)).decode("ascii")
    return token.rstrip("=").lower()


def ownership_record(
    *, domain: str, zone: str, token: str, target: str, ttl: int
) -> ExpectedRecord:
    """The CNAME ``{token}-check.{domain}`` to DOMAIN_CHECK_TARGET that proves control of a
    domain outside the account's zones."""
    domain, zone = zone_name(domain), zone_name(zone)
    if not _OWNERSHIP_TOKEN.match(token):
        raise InvalidValue(f"“{token}” is not an ownership token: lower-case letters and digits.")
    name = f"{token}{OWNERSHIP_SUFFIX}.{domain}"
    return ExpectedRecord(
        purpose=RecordPurpose.OWNERSHIP,
        name=name,
        relative=relative_name(name, zone=zone),
        rtype="CNAME",
        value=_host(target),
        ttl=ttl,
    )


def relative_name(name: str, *, zone: str) -> str:
    relative = dns.name.from_text(name).relativize(dns.name.from_text(zone))
    return relative.to_text()


def dkim_name(*, selector: str, domain: str) -> str:
    if not _SELECTOR.match(selector):
        raise InvalidValue(f"“{selector}” is not a DKIM selector (letters, digits, hyphens).")
    return f"{selector}.{DKIM_NAME}.{domain}"


def dkim_value(public_key: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_key}"


def dkim_public_key_of(value: str) -> str | None:
    """The ``p=`` tag of a DKIM record (RFC 6376 3.6.1), without the spaces it may hold."""
    for tag in value.split(";"):
        name, equals, content = tag.partition("=")
        if equals and name.strip() == "p":
            return "".join(content.split())
    return None


def is_dmarc(value: str) -> bool:
    return value.strip().startswith("v=DMARC1")


# SPF


def spf_mechanisms(*, ipv4: str, ipv6: str) -> tuple[str, ...]:
    try:
        v4, v6 = ipaddress.IPv4Address(ipv4.strip()), ipaddress.IPv6Address(ipv6.strip())
    except ValueError as error:
        raise InvalidValue(f"Not a platform address: {error}") from None
    return (f"ip4:{v4}", f"ip6:{v6}")


def is_spf(value: str) -> bool:
    """RFC 7208 4.5: an SPF record is "v=spf1" alone or followed by a space."""
    terms = value.split(" ", 1)
    return terms[0].lower() == SPF_VERSION


def spf_records(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(value for value in values if is_spf(value))


def spf_new(mechanisms: Sequence[str]) -> str:
    return " ".join([SPF_VERSION, *mechanisms, SPF_DEFAULT_ALL])


def spf_merge(record: str, *, mechanisms: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The record with our mechanisms inserted before its ``all`` (or after its last
    mechanism), and the ones actually added: those it does not already include."""
    terms = _spf_terms(record)
    position = _spf_insert_position(terms)
    added = tuple(m for m in mechanisms if not _spf_covers(terms[:position], m, passing=False))
    if not added:
        return record, ()
    merged = [*terms[:position], *added, *terms[position:]]
    return " ".join(merged), added


def spf_unmerge(record: str, *, added: Sequence[str]) -> str:
    """The record without exactly the terms a merge added (each once)."""
    terms = _spf_terms(record)
    for term in added:
        for index, held in enumerate(terms):
            if index and held.lower() == term.lower():
                del terms[index]
                break
    return " ".join(terms)


def spf_includes(record: str, *, mechanisms: Sequence[str]) -> bool:
    """Whether the record passes our addresses: for each of our mechanisms, the first
    ``ip4``/``ip6`` mechanism before the record's ``all`` that matches its address passes."""
    terms = _spf_terms(record)
    evaluated = terms[: _spf_insert_position(terms)]
    return all(_spf_covers(evaluated, mechanism, passing=True) for mechanism in mechanisms)


def spf_is_skeleton(record: str) -> bool:
    """Nothing left but the version and an ``all``: what remains of an SPF record the portal
    created once its mechanisms are taken out."""
    terms = _spf_terms(record)
    return len(terms) <= 2 and all(_SPF_ALL.match(term) for term in terms[1:])


def _spf_terms(record: str) -> list[str]:
    terms = record.split()
    if not terms or terms[0].lower() != SPF_VERSION:
        raise InvalidValue(f"“{record}” is not an SPF record (it does not start with v=spf1).")
    return terms


def _spf_insert_position(terms: list[str]) -> int:
    """Before the first ``all``; without one, after the last mechanism (modifiers such as
    ``redirect=`` apply only once every mechanism failed to match: RFC 7208 6.1)."""
    for index, term in enumerate(terms):
        if _SPF_ALL.match(term):
            return index
    mechanisms = [
        index for index, term in enumerate(terms) if index and not _SPF_MODIFIER.match(term)
    ]
    return (mechanisms[-1] if mechanisms else 0) + 1


def _spf_covers(terms: Sequence[str], mechanism: str, *, passing: bool) -> bool:
    """Whether an ``ip4``/``ip6`` term matches our mechanism's address: with ``passing``, the
    first one that does must be a pass (RFC 7208 4.6.2: the first match decides); without,
    any term with the pass qualifier counts (a merge adds nothing that is already there)."""
    kind, _, address_text = mechanism.partition(":")
    address = ipaddress.ip_address(address_text)
    for term in terms:
        qualifier, body = (term[0], term[1:]) if term[:1] in "+-~?" else ("+", term)
        held_kind, colon, network_text = body.partition(":")
        if not colon or held_kind.lower() != kind:
            continue
        try:
            network = ipaddress.ip_network(network_text, strict=False)
        except ValueError:
            continue
        matches = address.version == network.version and address in network
        if matches and (passing or qualifier == "+"):
            return qualifier == "+"
    return False


# A zone-file snippet, for a customer to load or copy


def render_zone_snippet(mail: MailRecords, *, extra: Sequence[ExpectedRecord] = ()) -> str:
    """The records in RFC 1035 zone-file syntax, relative to the zone, with a comment for
    each; an SPF merged into an existing record replaces that record."""
    origin = dns.name.from_text(mail.zone)
    title = gettext("Mail records for %(domain)s") % {"domain": mail.domain}
    lines = [f"; {title}", f"$ORIGIN {origin.to_text()}"]
    for record in (*extra, *mail.records):
        lines.append(f"; {_SNIPPET_COMMENTS[record.purpose]}")
        rdata = record_rdata(record.rtype, record.value)
        lines.append(f"{record.relative} {record.ttl} IN {record.rtype} {rdata.to_text()}")
    return "\n".join(lines) + "\n"


_SNIPPET_COMMENTS = {
    RecordPurpose.OWNERSHIP: _("Ownership: proves that the domain is yours."),
    RecordPurpose.MX: _("Mail exchanger."),
    RecordPurpose.AUTODISCOVER: _("Autodiscover: lets Outlook find its settings."),
    RecordPurpose.SPF: _("SPF: replaces your SPF record if you have one (only one is allowed)."),
    RecordPurpose.DKIM: _("DKIM public key."),
    RecordPurpose.DMARC: _("DMARC (suggested): p=none rejects nothing; tighten it later."),
}
