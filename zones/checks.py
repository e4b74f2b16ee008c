"""Do a platform's records resolve as they should? Real queries with dnspython.

The resolvers are DNS_CHECK_RESOLVERS ("host:port" each), or the system's when it is empty.
A name with no such record (NXDOMAIN, no answer) is "missing"; other addresses are "wrong",
with what was found. When the resolvers give no usable answer (timeout, SERVFAIL, REFUSED)
the check cannot conclude: DnsCheckError (transient) is raised, and the caller asks again
later rather than recording a result. Comparing an answer with the expected value is
``compare_records``, a pure function; the queries are kept to ``_lookup``.
"""

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import dns.exception
import dns.name
import dns.nameserver
import dns.rdataclass
import dns.rdatatype
import dns.resolver
from django.conf import settings

from zones.errors import DnsCheckError
from zones.mail import (
    DMARC_NAME,
    ExpectedRecord,
    RecordPurpose,
    ServedMail,
    dkim_public_key_of,
    is_dmarc,
    spf_includes,
    spf_records,
)
from zones.records import (
    InvalidValue,
    ipv4_value,
    ipv6_value,
    parse_server_address,
    record_rdata,
    record_value,
    txt_value,
)


class CheckStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    WRONG = "wrong"
    UNCHECKED = "unchecked"  # not looked up yet, or the servers gave no usable answer


@dataclass(frozen=True)
class RecordCheck:
    rtype: str  # "A" or "AAAA"
    name: str
    expected: str
    found: tuple[str, ...]  # sorted, normalised
    status: CheckStatus


@dataclass(frozen=True)
class CheckResult:
    records: tuple[RecordCheck, ...]

    @property
    def verified(self) -> bool:
        return all(record.status == CheckStatus.OK for record in self.records)


_NORMALISE = {"A": ipv4_value, "AAAA": ipv6_value}


def compare_records(*, rtype: str, name: str, expected: str, found: Iterable[str]) -> RecordCheck:
    """What the answer means: only the expected address is "ok"; an extra one is "wrong"
    too, since some clients would be sent elsewhere."""
    normalise = _NORMALISE[rtype]
    values = tuple(sorted({normalise(value) for value in found}))
    if not values:
        status = CheckStatus.MISSING
    elif values == (normalise(expected),):
        status = CheckStatus.OK
    else:
        status = CheckStatus.WRONG
    return RecordCheck(
        rtype=rtype, name=name, expected=normalise(expected), found=values, status=status
    )


def check_address_records(*, name: str, ipv4: str, ipv6: str) -> CheckResult:
    """Query the resolvers for name's A and AAAA and compare with the expected addresses."""
    resolver = _resolver()
    try:
        return CheckResult(
            records=tuple(
                compare_records(
                    rtype=rtype, name=name, expected=expected, found=_lookup(resolver, name, rtype)
                )
                for rtype, expected in (("A", ipv4), ("AAAA", ipv6))
            )
        )
    except InvalidValue as error:
        raise DnsCheckError(str(error), transient=False) from None


def txt_record_served(*, name: str, value: str) -> bool:
    """Whether the resolvers give value among the TXT records of name (an ACME DNS-01
    record the customer adds by hand)."""
    return value in _lookup(_resolver(), name, "TXT")


def _resolver() -> dns.resolver.Resolver:
    timeout = settings.DNS_TIMEOUT
    if settings.DNS_CHECK_RESOLVERS:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [
            nameserver for text in settings.DNS_CHECK_RESOLVERS for nameserver in _nameservers(text)
        ]
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise DnsCheckError(
                "This machine has no DNS resolver configured; set DNS_CHECK_RESOLVERS.",
                transient=False,
            ) from None
    resolver.timeout = resolver.lifetime = timeout
    return resolver


def _nameservers(text: str) -> list[dns.nameserver.Do53Nameserver]:
    try:
        server = parse_server_address(text)
    except InvalidValue as error:
        raise DnsCheckError(
            f"The portal's setting DNS_CHECK_RESOLVERS is wrong: {error}", transient=False
        ) from None
    try:
        addresses = [str(ipaddress.ip_address(server.host))]
    except ValueError:
        # dnspython wants addresses; a host name (a compose service) is looked up here, and
        # each of its addresses is tried in turn.
        try:
            found = socket.getaddrinfo(server.host, server.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as error:
            raise DnsCheckError(
                f"The address of the DNS resolver {server.host} could not be found "
                f"({error.strerror}).",
                transient=True,
            ) from None
        addresses = list(dict.fromkeys(entry[4][0] for entry in found))
    return [dns.nameserver.Do53Nameserver(address, server.port) for address in addresses]


def _lookup(resolver: dns.resolver.Resolver, name: str, rtype: str) -> list[str]:
    """The values the resolvers give for name (after any CNAME); empty when there are none.
    TXT values are the record's strings joined, unquoted."""
    servers = (
        f"The DNS resolvers ({', '.join(settings.DNS_CHECK_RESOLVERS)})"
        if settings.DNS_CHECK_RESOLVERS
        else "The system's DNS resolvers"
    )
    answer = _answer(resolver, _owner(name), rtype, servers=servers)
    if answer is None:
        return []
    if rtype == "TXT":
        return [txt_value(rdata) for rdata in answer.rrset or ()]
    return [rdata.address for rdata in answer.rrset or ()]


def _owner(name: str) -> dns.name.Name:
    try:
        return dns.name.from_text(name)
    except dns.exception.DNSException as error:
        raise DnsCheckError(f"“{name}” is not a DNS name: {error}", transient=False) from None


def _answer(
    resolver: dns.resolver.Resolver, owner: dns.name.Name, rtype: str, *, servers: str
) -> dns.resolver.Answer | None:
    """The answer for owner (None for NXDOMAIN); ``servers`` names them in errors."""
    name = owner.to_text(omit_final_dot=True)
    try:
        return resolver.resolve(owner, rtype, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return None
    except dns.exception.Timeout:
        raise DnsCheckError(
            f"{servers} did not answer within {resolver.lifetime:g} s "
            f"for the {rtype} record of {name}.",
            transient=True,
        ) from None
    except dns.resolver.NoNameservers as error:
        raise DnsCheckError(
            f"{servers} could not answer for the {rtype} record of {name} ({_failures(error)}).",
            transient=True,
        ) from None
    except dns.exception.DNSException as error:
        raise DnsCheckError(
            f"The {rtype} record of {name} could not be looked up: {error}", transient=True
        ) from None


def _failures(error: dns.resolver.NoNameservers) -> str:
    """Each resolver's error, e.g. "answered SERVFAIL"."""
    # dnspython's entries are (server, over TCP, port, rcode text or exception, response).
    failures = [
        f"answered {problem}" if isinstance(problem, str) else f"failed ({problem})"
        for _server, _tcp, _port, problem, _response in error.kwargs.get("errors", [])
    ]
    return "; ".join(dict.fromkeys(failures)) or "no answer"


# A mail domain's records: every kind, asked of the zone's own servers.

# CNAME hops followed from one name (RFC 1034 asks resolvers to bound the chase too).
MAX_ALIASES = 8
DEFAULT_DNS_PORT = 53


@dataclass(frozen=True)
class Found:
    """What the servers give for one expected record; values in record_value's form."""

    values: tuple[str, ...] = ()  # of the expected type, after any CNAME chain
    # For an expected CNAME: the addresses the name has itself (a provider may flatten the
    # alias into A/AAAA records) and those of the expected target, compared as sets.
    addresses: tuple[str, ...] = ()
    target_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class MailRecordCheck:
    record: ExpectedRecord
    status: CheckStatus
    found: tuple[str, ...] = ()  # sorted
    error: str = field(default="", compare=False)  # why it is unchecked


@dataclass(frozen=True)
class MailCheckRules:
    """What the comparison needs beyond each record: our SPF mechanisms, and whether the
    domain's MX (and autodiscover SRV) set must be ours alone (authoritative mode)."""

    spf_mechanisms: tuple[str, ...]
    exclusive: bool
    # Every host our MX records name: an MX set is compared by its hosts, not priorities.
    mx_hosts: tuple[str, ...] = ()


def compare_mail_record(
    *, record: ExpectedRecord, found: Found, rules: MailCheckRules
) -> MailRecordCheck:
    """Expected against found, for one record: pure."""
    values = tuple(sorted(set(found.values)))
    if record.purpose == RecordPurpose.OWNERSHIP:
        return _compare_alias(record, found)
    if not values:
        return MailRecordCheck(record=record, status=CheckStatus.MISSING)
    if record.purpose == RecordPurpose.MX:
        hosts = {value.split()[-1] for value in values}
        ok = record.value.split()[-1] in hosts and (
            not rules.exclusive or hosts <= set(rules.mx_hosts)
        )
    elif record.purpose == RecordPurpose.AUTODISCOVER:
        ours = record_value(record_rdata(record.rtype, record.value))
        ok = ours in values and (not rules.exclusive or values == (ours,))
    elif record.purpose == RecordPurpose.SPF:
        spfs = spf_records(values)
        if not spfs:
            return MailRecordCheck(record=record, status=CheckStatus.MISSING, found=values)
        values = spfs
        ok = len(spfs) == 1 and spf_includes(spfs[0], mechanisms=rules.spf_mechanisms)
    elif record.purpose == RecordPurpose.DKIM:
        ok = dkim_public_key_of(record.value) in {dkim_public_key_of(value) for value in values}
    else:  # DMARC: any policy of the customer's will do
        values = tuple(value for value in values if is_dmarc(value))
        if not values:
            return MailRecordCheck(record=record, status=CheckStatus.MISSING)
        ok = True
    return MailRecordCheck(
        record=record, status=CheckStatus.OK if ok else CheckStatus.WRONG, found=values
    )


def _compare_alias(record: ExpectedRecord, found: Found) -> MailRecordCheck:
    target = record_value(record_rdata("CNAME", record.value))
    values = tuple(sorted(set(found.values)))
    if values:
        status = CheckStatus.OK if values == (target,) else CheckStatus.WRONG
        return MailRecordCheck(record=record, status=status, found=values)
    addresses = tuple(sorted(set(found.addresses)))
    if not addresses:
        return MailRecordCheck(record=record, status=CheckStatus.MISSING)
    same = set(addresses) == set(found.target_addresses)
    return MailRecordCheck(
        record=record, status=CheckStatus.OK if same else CheckStatus.WRONG, found=addresses
    )


class Nameservers(Protocol):
    def resolver_for(self, owner: dns.name.Name) -> tuple[dns.resolver.Resolver, str]:
        """The resolver to ask about owner, and how errors name its servers."""


class CheckResolvers:
    """DNS_CHECK_RESOLVERS, for every name."""

    def __init__(self) -> None:
        self.resolver = _resolver()
        self.described = f"The DNS resolvers ({', '.join(settings.DNS_CHECK_RESOLVERS)})"

    def resolver_for(self, owner: dns.name.Name) -> tuple[dns.resolver.Resolver, str]:
        return self.resolver, self.described


class AuthoritativeServers:
    """The servers each zone's NS records name, asked without recursion: what the zone
    serves now, never a cached answer. ``bootstrap`` (the system's resolver) finds the zone
    and its servers' addresses only."""

    def __init__(
        self, *, bootstrap: dns.resolver.Resolver, timeout: float, port: int = DEFAULT_DNS_PORT
    ) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.port = port
        self._zones: dict[dns.name.Name, dns.resolver.Resolver] = {}

    def resolver_for(self, owner: dns.name.Name) -> tuple[dns.resolver.Resolver, str]:
        described = "The system's DNS resolvers"
        zone = _zone_of(owner, resolver=self.bootstrap, described=described)
        if zone not in self._zones:
            answer = _answer(self.bootstrap, zone, "NS", servers=described)
            hosts = sorted(rdata.target for rdata in (answer.rrset if answer else ()) or ())
            addresses = [
                address
                for host in hosts
                for rtype in ("A", "AAAA")
                for address in _addresses(self.bootstrap, host, rtype, described)
            ]
            if not addresses:
                raise DnsCheckError(
                    f"The name servers of {_name_text(zone)} could not be found.", transient=True
                )
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(address, self.port)
                for address in dict.fromkeys(addresses)
            ]
            resolver.flags = 0  # no recursion: the zone's own data
            resolver.timeout = resolver.lifetime = self.timeout
            self._zones[zone] = resolver
        return self._zones[zone], f"The DNS servers of {_name_text(zone)}"


def _addresses(
    resolver: dns.resolver.Resolver, host: dns.name.Name, rtype: str, described: str
) -> list[str]:
    answer = _answer(resolver, host, rtype, servers=described)
    return [rdata.address for rdata in (answer.rrset if answer else None) or ()]


def _zone_of(
    owner: dns.name.Name, *, resolver: dns.resolver.Resolver, described: str
) -> dns.name.Name:
    """The apex of the zone holding owner (the nearest SOA)."""
    name = _name_text(owner)
    try:
        return dns.resolver.zone_for_name(owner, resolver=resolver)
    except dns.resolver.NoRootSOA:
        raise DnsCheckError(f"No zone holds {name}.", transient=True) from None
    except dns.exception.Timeout:
        raise DnsCheckError(
            f"{described} did not answer for the zone of {name}.", transient=True
        ) from None
    except dns.exception.DNSException as error:
        raise DnsCheckError(
            f"The zone of {name} could not be found: {error}", transient=True
        ) from None


def nameservers() -> Nameservers:
    """DNS_CHECK_RESOLVERS when set, otherwise each zone's authoritative servers."""
    if settings.DNS_CHECK_RESOLVERS:
        return CheckResolvers()
    return AuthoritativeServers(bootstrap=_resolver(), timeout=settings.DNS_TIMEOUT)


def txt_values_served(name: str) -> tuple[str, ...]:
    """The TXT values of name, asked of its zone's authoritative servers (or
    DNS_CHECK_RESOLVERS), never a cache: a validation record the customer just added."""
    return _follow(nameservers(), _owner(name), "TXT")


def check_mail_records(
    *,
    records: Sequence[ExpectedRecord],
    rules: MailCheckRules,
    servers: Nameservers | None = None,
) -> tuple[MailRecordCheck, ...]:
    """Each record compared with what its zone serves. A record whose servers gave no
    usable answer is "unchecked", with the reason; wrong settings raise DnsCheckError."""
    servers = servers or nameservers()
    checks = []
    for record in records:
        try:
            found = _found(servers, record)
        except DnsCheckError as error:
            if not error.transient:
                raise
            checks.append(
                MailRecordCheck(record=record, status=CheckStatus.UNCHECKED, error=error.message)
            )
            continue
        checks.append(compare_mail_record(record=record, found=found, rules=rules))
    return tuple(checks)


def served_mail_found(*, domain: str, servers: Nameservers | None = None) -> ServedMail:
    """What the domain serves that mail_records takes into account (its SPF record, whether
    it has a DMARC policy), asked of its servers: for a domain without DNS Assist.
    DnsCheckError when they give no usable answer."""
    servers = servers or nameservers()
    spfs = spf_records(_follow(servers, _owner(domain), "TXT"))
    dmarc = _follow(servers, _owner(f"{DMARC_NAME}.{domain}"), "TXT")
    return ServedMail(spf=spfs[0] if spfs else None, has_dmarc=any(map(is_dmarc, dmarc)))


def _found(servers: Nameservers, record: ExpectedRecord) -> Found:
    owner = _owner(record.name)
    if record.rtype != "CNAME":
        return Found(values=_follow(servers, owner, record.rtype))
    alias = _follow(servers, owner, "CNAME")
    if alias:
        return Found(values=alias)
    target = _owner(record.value)
    return Found(
        addresses=_follow(servers, owner, "A") + _follow(servers, owner, "AAAA"),
        target_addresses=_follow(servers, target, "A") + _follow(servers, target, "AAAA"),
    )


def _follow(servers: Nameservers, owner: dns.name.Name, rtype: str) -> tuple[str, ...]:
    """The values of rtype at owner, following a CNAME chain from zone to zone (an
    authoritative server gives only the part of the chain inside its zones)."""
    rdtype = dns.rdatatype.from_text(rtype)
    for _hop in range(MAX_ALIASES):
        resolver, described = servers.resolver_for(owner)
        answer = _answer(resolver, owner, rtype, servers=described)
        if answer is None:
            return ()
        if answer.rrset is not None and (
            rdtype == dns.rdatatype.CNAME or answer.rrset.rdtype == rdtype
        ):
            return tuple(record_value(rdata) for rdata in answer.rrset)
        chain_end = _chain_end(answer.response, owner)
        if chain_end == owner:
            return ()
        owner = chain_end
    raise DnsCheckError(
        f"{_name_text(owner)} is at the end of more than {MAX_ALIASES} aliases (CNAME).",
        transient=False,
    )


def _chain_end(response, owner: dns.name.Name) -> dns.name.Name:
    """The last target of the CNAME chain an answer holds from owner."""
    for _hop in range(MAX_ALIASES):
        alias = response.get_rrset(response.answer, owner, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if alias is None:
            return owner
        owner = alias[0].target
    return owner


def _name_text(owner: dns.name.Name) -> str:
    return owner.to_text(omit_final_dot=True)
