"""An RFC 1035 zone file from the embedded store's records: pure, no I/O."""

from collections.abc import Iterable, Sequence

import dns.exception
import dns.name

from zones.models import EmbeddedRecord
from zones.records import InvalidValue, record_rdata

# SOA timers (RFC 1912 2.2 ranges): refresh, retry, expire, and the negative-caching TTL
# (RFC 2308), short so that a record added later is seen soon.
SOA_TIMERS = (3600, 900, 1209600, 300)
# Debian's own db.local names localhost as the server when no real one is known.
DEFAULT_NAMESERVERS = ("localhost",)


def render_zone_file(
    *,
    zone: str,
    serial: int,
    records: Iterable[EmbeddedRecord],
    default_ttl: int,
    nameservers: Sequence[str],
) -> str:
    """The zone with a synthesised SOA (first name server, hostmaster@zone) and NS records."""
    origin = dns.name.from_text(zone)
    servers = [_absolute(server) for server in nameservers]
    refresh, retry, expire, minimum = SOA_TIMERS
    lines = [
        f"; Zone {zone}, exported from the Private Exchange portal's DNS store.",
        f"$ORIGIN {origin.to_text()}",
        f"$TTL {default_ttl}",
        f"@ IN SOA {servers[0]} hostmaster {serial} {refresh} {retry} {expire} {minimum}",
        *(f"@ IN NS {server}" for server in servers),
    ]
    for record in records:
        owner = dns.name.from_text(record.name).relativize(origin).to_text()
        lines.append(f"{owner} {record.ttl} IN {record.rtype} {_value(record)}")
    return "\n".join(lines) + "\n"


def _absolute(server: str) -> str:
    try:
        return dns.name.from_text(server).to_text()
    except dns.exception.DNSException:
        raise InvalidValue(f"“{server}” is not a name server's name.") from None


def _value(record: EmbeddedRecord) -> str:
    """TXT quoted and escaped, host names absolute (with the final dot)."""
    return record_rdata(record.rtype, record.value).to_text()
