"""DNS record values, server addresses and TSIG keys: pure parsing, no I/O.

Every parser raises InvalidValue with a message for the operator; the writers and checks
turn it into their own error.
"""

import base64
import binascii
import datetime
import ipaddress
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tsig
from dns.rdtypes.ANY.TXT import TXT

from zones.names import InvalidDomainName, normalise_domain

DEFAULT_DNS_PORT = 53
# A character-string in a TXT record holds at most 255 octets (RFC 1035 3.3).
TXT_STRING_LENGTH = 255


class InvalidValue(ValueError):
    """A zone, name, address, server or key that cannot be used; the message says why."""


@dataclass(frozen=True)
class AddressRecords:
    """The A and AAAA values of one name, sorted; empty when the name has none."""

    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_server_address(text: str) -> ServerAddress:
    """Parses "host:port", "host" (port 53), "[2001:db8::1]:53" or a bare IPv6 address."""
    text = text.strip()
    if not text:
        raise InvalidValue("No DNS server address given.")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InvalidValue(f"“{text}” is not a server address; write [IPv6]:port.")
        port_text = rest[1:] or str(DEFAULT_DNS_PORT)
    elif text.count(":") > 1:
        host, port_text = text, str(DEFAULT_DNS_PORT)
    else:
        host, _, port_text = text.partition(":")
        port_text = port_text or str(DEFAULT_DNS_PORT)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidValue(f"“{text}” has no valid port; write host:port, e.g. 127.0.0.1:53.")
    if not host:
        raise InvalidValue(f"“{text}” has no host; write host:port, e.g. 127.0.0.1:53.")
    return ServerAddress(host=host, port=int(port_text))


def tsig_key(*, name: str, secret: str, algorithm: str) -> dns.tsig.Key:
    """The TSIG key from its settings: a name, a base64 secret and an HMAC algorithm."""
    if not name.strip():
        raise InvalidValue("No TSIG key name given.")
    if not secret.strip():
        raise InvalidValue(f"No secret given for the TSIG key {name}.")
    try:
        secret_bytes = base64.b64decode(secret.strip(), validate=True)
    except binascii.Error:
        raise InvalidValue(f"The secret of the TSIG key {name} is not valid base64.") from None
    try:
        key = dns.tsig.Key(name.strip(), secret_bytes, algorithm.strip())
        dns.tsig.HMACTSig(key.secret, key.algorithm)
    except (dns.exception.DNSException, NotImplementedError):
        raise InvalidValue(f"“{algorithm}” is not a supported TSIG algorithm.") from None
    return key


def zone_name(zone: str) -> str:
    try:
        return normalise_domain(zone)
    except InvalidDomainName as error:
        raise InvalidValue(f"“{zone}” is not a zone name: {error}") from None


def owner_name(name: str, *, zone: str) -> dns.name.Name:
    """The absolute name of a record, which must be the zone or a name inside it.

    Owner names may hold underscores (``_acme-challenge``), so they are not host names.
    """
    try:
        owner = dns.name.from_text(name.strip().lower())
    except dns.exception.DNSException as error:
        raise InvalidValue(f"“{name}” is not a DNS name: {error}") from None
    if not owner.is_subdomain(dns.name.from_text(zone)):
        raise InvalidValue(f"{name} is not inside the zone {zone}.")
    return owner


def ipv4_value(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise InvalidValue(f"“{text}” is not an IPv4 address.") from None


def ipv6_value(text: str) -> str:
    """The compressed form, so that equal addresses compare equal as text."""
    try:
        return str(ipaddress.IPv6Address(text.strip()))
    except ValueError:
        raise InvalidValue(f"“{text}” is not an IPv6 address.") from None


def txt_rdata(value: str) -> TXT:
    """A TXT record holding value, cut into 255-octet strings when longer."""
    data = value.encode()
    if not data:
        raise InvalidValue("A TXT record needs a value.")
    strings = [data[i : i + TXT_STRING_LENGTH] for i in range(0, len(data), TXT_STRING_LENGTH)]
    return TXT(dns.rdataclass.IN, dns.rdatatype.TXT, strings)


def txt_value(rdata: TXT) -> str:
    return b"".join(rdata.strings).decode(errors="replace")


# Record types whose values the portal writes and compares; names in them are absolute.
RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "SRV", "TXT")


def record_type(rtype: str) -> int:
    if rtype not in RECORD_TYPES:
        raise InvalidValue(f"The portal does not write {rtype} records.")
    return dns.rdatatype.from_text(rtype)


def record_rdata(rtype: str, value: str) -> dns.rdata.Rdata:
    """The record of that type holding value, in the portal's form: a TXT value is its text
    unquoted, host names in other values are absolute without the final dot
    (``10 mx.example.net``)."""
    record_type(rtype)
    if rtype == "TXT":
        return txt_rdata(value)
    value = value.lower()  # names are case-insensitive; written in one case, they compare
    if rtype == "A":
        value = ipv4_value(value)
    elif rtype == "AAAA":
        value = ipv6_value(value)
    try:
        return dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.from_text(rtype),
            value,
            origin=dns.name.root,
            relativize=False,
        )
    except (dns.exception.DNSException, ValueError) as error:
        raise InvalidValue(f"“{value}” is not a valid {rtype} record: {error}") from None


def record_value(rdata: dns.rdata.Rdata) -> str:
    """The portal's form of a record's value (see record_rdata), so equal records compare
    equal as text."""
    if isinstance(rdata, TXT):
        return txt_value(rdata)
    if rdata.rdtype == dns.rdatatype.A:
        return ipv4_value(rdata.address)
    if rdata.rdtype == dns.rdatatype.AAAA:
        # dnspython and ipaddress differ on some IPv6 forms (::ffff:1.2.3.4); compare one form.
        return ipv6_value(rdata.address)
    return rdata.to_text(origin=dns.name.root, relativize=True).lower()


def next_serial(current: int, *, today: datetime.date) -> int:
    """The SOA serial after a change: YYYYMMDDnn, or one more when that is not greater."""
    dated = int(today.strftime("%Y%m%d")) * 100
    return max(current + 1, dated)
