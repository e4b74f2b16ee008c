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
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver
from django.conf import settings

from zones.errors import DnsCheckError
from zones.records import (
    InvalidValue,
    ipv4_value,
    ipv6_value,
    parse_server_address,
    txt_value,
)


class CheckStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    WRONG = "wrong"


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
    try:
        owner = dns.name.from_text(name)
    except dns.exception.DNSException as error:
        raise DnsCheckError(f"“{name}” is not a DNS name: {error}", transient=False) from None
    resolvers = (
        f"The DNS resolvers ({', '.join(settings.DNS_CHECK_RESOLVERS)})"
        if settings.DNS_CHECK_RESOLVERS
        else "The system's DNS resolvers"
    )
    try:
        answer = resolver.resolve(owner, rtype, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return []
    except dns.exception.Timeout:
        raise DnsCheckError(
            f"{resolvers} did not answer within {resolver.lifetime:g} s "
            f"for the {rtype} record of {name}.",
            transient=True,
        ) from None
    except dns.resolver.NoNameservers as error:
        raise DnsCheckError(
            f"{resolvers} could not answer for the {rtype} record of {name} ({_failures(error)}).",
            transient=True,
        ) from None
    except dns.exception.DNSException as error:
        raise DnsCheckError(
            f"The {rtype} record of {name} could not be looked up: {error}", transient=True
        ) from None
    if rtype == "TXT":
        return [txt_value(rdata) for rdata in answer.rrset or ()]
    return [rdata.address for rdata in answer.rrset or ()]


def _failures(error: dns.resolver.NoNameservers) -> str:
    """Each resolver's error, e.g. "answered SERVFAIL"."""
    # dnspython's entries are (server, over TCP, port, rcode text or exception, response).
    failures = [
        f"answered {problem}" if isinstance(problem, str) else f"failed ({problem})"
        for _server, _tcp, _port, problem, _response in error.kwargs.get("errors", [])
    ]
    return "; ".join(dict.fromkeys(failures)) or "no answer"
