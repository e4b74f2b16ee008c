"""DNS Assist writers: put a platform's records into its customer's zone.

``get_writer()`` picks one from the settings. Rfc2136Writer sends dynamic updates (RFC 2136)
signed with TSIG (RFC 8945) to the primary named by DNS_UPDATE_SERVER; EmbeddedWriter keeps
the records in the portal's own tables when no primary is set.

Names are absolute (``mail.example.com``); ``zone`` is the customer's zone. The records go to
the most specific zone that holds the name inside it: the primary may serve a sub-zone
(``eu.example.com``) separately. Every operation reads first and changes nothing when the
records are already right, so a rerun sends no update and leaves the SOA serial alone.

``change_records`` changes one record set (A, AAAA, CNAME, MX, SRV, TXT) by exact values,
touching no other; given the values it ``expect``s (those a customer confirmed), it sends
them as the update's prerequisite (RFC 2136 3.2), so the primary refuses the change if
another tool changed the set meanwhile. ``zones.assist`` builds a mail domain's DNS Assist
on it.
"""

import socket
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update
from django.conf import settings
from django.db import transaction
from django.db.models.functions import Length
from django.utils import timezone

from zones.errors import DnsConflictError, DnsWriteError
from zones.models import EmbeddedRecord, EmbeddedZone, RecordType
from zones.names import parent_domains
from zones.records import (
    AddressRecords,
    InvalidValue,
    ServerAddress,
    ipv4_value,
    ipv6_value,
    next_serial,
    owner_name,
    parse_server_address,
    record_rdata,
    record_type,
    record_value,
    tsig_key,
    txt_rdata,
    zone_name,
)

A, AAAA, TXT, SOA, CNAME = (
    dns.rdatatype.A,
    dns.rdatatype.AAAA,
    dns.rdatatype.TXT,
    dns.rdatatype.SOA,
    dns.rdatatype.CNAME,
)


class DnsWriter(Protocol):
    def set_address_records(self, *, zone: str, name: str, ipv4: str, ipv6: str, ttl: int) -> None:
        """Make name have exactly this A and this AAAA record, touching nothing else."""

    def read_address_records(self, *, zone: str, name: str) -> AddressRecords:
        """The A and AAAA values the store (the primary itself, not a cache) holds."""

    def set_txt(self, *, zone: str, name: str, value: str, ttl: int) -> None:
        """Add value to the TXT records of name, keeping its other values."""

    def delete_txt(self, *, zone: str, name: str, value: str) -> None:
        """Remove value from the TXT records of name, keeping its other values."""

    def read_records(self, *, zone: str, name: str, rtype: str) -> tuple[str, ...]:
        """The values of that type the store holds at name, sorted, in record_value's form."""

    def change_records(
        self,
        *,
        zone: str,
        name: str,
        rtype: str,
        ttl: int,
        remove: Collection[str] = (),
        add: Collection[str] = (),
        expect: Collection[str] | None = None,
    ) -> bool:
        """Remove these values and add those at name, in one change, keeping its other
        records; False when they are already so. With ``expect``, only while the held values
        are exactly those (DnsConflictError otherwise): what a customer confirmed."""


def get_writer() -> DnsWriter:
    """The writer the settings ask for; DnsWriteError (permanent) when they are wrong."""
    if not settings.DNS_UPDATE_SERVER:
        return EmbeddedWriter()
    with _invalid("DNS_UPDATE_SERVER"):
        server = parse_server_address(settings.DNS_UPDATE_SERVER)
    with _invalid("DNS_TSIG_KEY_NAME, DNS_TSIG_SECRET or DNS_TSIG_ALGORITHM"):
        key = tsig_key(
            name=settings.DNS_TSIG_KEY_NAME,
            secret=settings.DNS_TSIG_SECRET,
            algorithm=settings.DNS_TSIG_ALGORITHM,
        )
    return Rfc2136Writer(server=server, key=key, timeout=settings.DNS_TIMEOUT)


@contextmanager
def _invalid(setting: str = "") -> Iterator[None]:
    """Turns a parser's InvalidValue into a permanent DnsWriteError."""
    try:
        yield
    except InvalidValue as error:
        where = f"The portal's setting {setting} is wrong: " if setting else ""
        raise DnsWriteError(f"{where}{error}", transient=False) from None


def _address_values(ipv4: str, ipv6: str) -> dict[int, set[str]]:
    with _invalid():
        return {A: {ipv4_value(ipv4)}, AAAA: {ipv6_value(ipv6)}}


def _target(zone: str, name: str) -> tuple[dns.name.Name, dns.name.Name]:
    with _invalid():
        zone = zone_name(zone)
        return dns.name.from_text(zone), owner_name(name, zone=zone)


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True)


# RFC 2136 against a primary.


class Rfc2136Writer:
    """Dynamic updates to the primary, every message (queries too) signed with the TSIG key."""

    def __init__(self, *, server: ServerAddress, key: dns.tsig.Key, timeout: float) -> None:
        self.server = server
        self.key = key
        self.timeout = timeout

    def set_address_records(self, *, zone: str, name: str, ipv4: str, ipv6: str, ttl: int) -> None:
        origin, owner = _target(zone, name)
        wanted = _address_values(ipv4, ipv6)
        with self._session() as session:
            apex = session.zone_of(owner, within=origin)
            held = {rtype: session.rrset(owner, rtype) for rtype in wanted}
            stale = [
                rtype
                for rtype, values in wanted.items()
                if held[rtype] is None or _values(held[rtype]) != values or held[rtype].ttl != ttl
            ]
            if not stale:
                return
            update = dns.update.UpdateMessage(apex, keyring=self.key)
            for rtype in stale:
                update.replace(owner, ttl, rtype, *wanted[rtype])
            session.update(update, apex)
            for rtype, values in wanted.items():
                if (found := _values(session.rrset(owner, rtype))) != values:
                    raise DnsWriteError(
                        f"The DNS server {self.server} accepted the update but serves "
                        f"{dns.rdatatype.to_text(rtype)} {_listing(found)} for {_text(owner)} "
                        f"instead of {_listing(values)}.",
                        transient=False,
                    )

    def read_address_records(self, *, zone: str, name: str) -> AddressRecords:
        _origin, owner = _target(zone, name)
        with self._session() as session:
            return AddressRecords(
                ipv4=tuple(sorted(_values(session.rrset(owner, A)))),
                ipv6=tuple(sorted(_values(session.rrset(owner, AAAA)))),
            )

    def set_txt(self, *, zone: str, name: str, value: str, ttl: int) -> None:
        origin, owner = _target(zone, name)
        with _invalid():
            rdata = txt_rdata(value)
        with self._session() as session:
            apex = session.zone_of(owner, within=origin)
            if value in _values(session.rrset(owner, TXT)):
                return
            update = dns.update.UpdateMessage(apex, keyring=self.key)
            update.add(owner, ttl, rdata)
            session.update(update, apex)
            if value not in _values(session.rrset(owner, TXT)):
                raise DnsWriteError(
                    f"The DNS server {self.server} accepted the TXT record “{value}” for "
                    f"{_text(owner)} but does not serve it.",
                    transient=False,
                )

    def delete_txt(self, *, zone: str, name: str, value: str) -> None:
        origin, owner = _target(zone, name)
        with _invalid():
            rdata = txt_rdata(value)
        with self._session() as session:
            apex = session.zone_of(owner, within=origin)
            if value not in _values(session.rrset(owner, TXT)):
                return
            update = dns.update.UpdateMessage(apex, keyring=self.key)
            update.delete(owner, rdata)
            session.update(update, apex)
            if value in _values(session.rrset(owner, TXT)):
                raise DnsWriteError(
                    f"The DNS server {self.server} accepted the removal of the TXT record "
                    f"“{value}” of {_text(owner)} but still serves it.",
                    transient=False,
                )

    def read_records(self, *, zone: str, name: str, rtype: str) -> tuple[str, ...]:
        _origin, owner = _target(zone, name)
        with self._session() as session:
            return tuple(sorted(_values(session.rrset(owner, _rdtype(rtype)))))

    def change_records(
        self,
        *,
        zone: str,
        name: str,
        rtype: str,
        ttl: int,
        remove: Collection[str] = (),
        add: Collection[str] = (),
        expect: Collection[str] | None = None,
    ) -> bool:
        origin, owner = _target(zone, name)
        removing, adding = _rdatas(rtype, remove), _rdatas(rtype, add)
        with self._session() as session:
            apex = session.zone_of(owner, within=origin)
            held = session.rrset(owner, _rdtype(rtype))
            held_values = {record_value(rdata): rdata for rdata in held or ()}
            wanted = (held_values.keys() - removing.keys()) | adding.keys()
            if wanted == held_values.keys():
                return False
            _check_expected(expect, held_values.keys(), owner=owner, rtype=rtype)
            update = dns.update.UpdateMessage(apex, keyring=self.key)
            if expect is not None:
                # RFC 2136 3.2 prerequisite: the primary applies the change only to the
                # records read above, so a change made meanwhile is not overwritten.
                if held:
                    update.present(owner, *list(held))  # rdatas: sent with TTL 0 (2.4.2)
                else:
                    update.absent(owner, _rdtype(rtype))
            for value in removing.keys() & held_values.keys():
                update.delete(owner, held_values[value])
            for value in adding.keys() - held_values.keys():
                update.add(owner, ttl, adding[value])
            session.update(update, apex)
            found = _values(session.rrset(owner, _rdtype(rtype)))
            if found != wanted:
                raise DnsWriteError(
                    f"The DNS server {self.server} accepted the update but serves {rtype} "
                    f"{_listing(found)} for {_text(owner)} instead of {_listing(wanted)}"
                    + (" (a CNAME cannot be beside other records)." if rtype == "CNAME" else "."),
                    transient=False,
                )
            return True

    @contextmanager
    def _session(self) -> Iterator["_Session"]:
        """One TCP connection for the reads, the update and the read-back of one operation."""
        try:
            with socket.create_connection(
                (self.server.host, self.server.port), timeout=self.timeout
            ) as sock:
                sock.setblocking(False)  # dnspython waits on the socket itself
                yield _Session(sock=sock, server=self.server, key=self.key, timeout=self.timeout)
        except (OSError, EOFError, dns.exception.DNSException) as error:
            raise _failure(error, server=self.server, key=self.key, timeout=self.timeout) from error


class _Session:
    def __init__(
        self, *, sock: socket.socket, server: ServerAddress, key: dns.tsig.Key, timeout: float
    ) -> None:
        self.sock = sock
        self.server = server
        self.key = key
        self.timeout = timeout

    def _exchange(self, message: dns.message.Message) -> dns.message.Message:
        return dns.query.tcp(message, self.server.host, timeout=self.timeout, sock=self.sock)

    def _query(self, owner: dns.name.Name, rtype: int) -> dns.message.Message:
        query = dns.message.make_query(owner, rtype)
        query.flags &= ~dns.flags.RD  # the primary's own data, never a recursive answer
        query.use_tsig(self.key)
        response = self._exchange(query)
        _raise_for_answer(response, owner=owner, server=self.server)
        return response

    def rrset(self, owner: dns.name.Name, rtype: int) -> dns.rrset.RRset | None:
        """The records of that type the primary holds at owner; an error if it is a CNAME."""
        response = self._query(owner, rtype)
        alias = response.get_rrset(response.answer, owner, dns.rdataclass.IN, CNAME)
        if alias is not None and rtype != CNAME:
            raise DnsWriteError(
                f"{_text(owner)} is an alias (CNAME to {alias[0].target}), which cannot also "
                f"have {dns.rdatatype.to_text(rtype)} records: remove the CNAME record and "
                "try again.",
                transient=False,
            )
        return response.get_rrset(response.answer, owner, dns.rdataclass.IN, rtype)

    def zone_of(self, owner: dns.name.Name, *, within: dns.name.Name) -> dns.name.Name:
        """The apex of the zone holding owner on the primary, which must be inside ``within``."""
        response = self._query(owner, SOA)
        if owner != within and response.get_rrset(response.answer, owner, dns.rdataclass.IN, CNAME):
            # An alias is never a zone's apex; its answer tells of the target's zone instead.
            return self.zone_of(owner.parent(), within=within)
        apex = _zone_apex(response, owner)
        if apex is None or not apex.is_subdomain(within):
            raise DnsWriteError(
                f"The DNS server {self.server} does not serve the zone {_text(within)}.",
                transient=False,
            )
        return apex

    def update(self, update: dns.update.UpdateMessage, apex: dns.name.Name) -> None:
        response = self._exchange(update)
        if response.rcode() != dns.rcode.NOERROR:
            raise update_refusal(
                response.rcode(), server=self.server, zone=_text(apex), key=self.key
            )


def _values(rrset: dns.rrset.RRset | None) -> set[str]:
    """The values of a record set, in the form the portal writes them."""
    return {record_value(rdata) for rdata in rrset or ()}


def _rdtype(rtype: str) -> int:
    with _invalid():
        return record_type(rtype)


def _rdatas(rtype: str, values: Collection[str]) -> dict[str, dns.rdata.Rdata]:
    """Each value's record, keyed by the value in record_value's form."""
    with _invalid():
        rdatas = [record_rdata(rtype, value) for value in values]
    return {record_value(rdata): rdata for rdata in rdatas}


def _check_expected(
    expect: Collection[str] | None, held: Collection[str], *, owner: dns.name.Name, rtype: str
) -> None:
    if expect is None:
        return
    with _invalid():
        expected = {record_value(record_rdata(rtype, value)) for value in expect}
    if expected != set(held):
        raise DnsConflictError(
            f"The {rtype} records of {_text(owner)} changed since they were read: they are "
            f"now {_listing(set(held))} instead of {_listing(expected)}. Nothing was written.",
            transient=False,
        )


def _listing(values: set[str]) -> str:
    return ", ".join(sorted(values)) or "nothing"


# What the primary's answers mean: pure functions.


def _zone_apex(response: dns.message.Message, owner: dns.name.Name) -> dns.name.Name | None:
    """The zone of an authoritative answer to an SOA query: the SOA's owner, in either the
    answer (owner is the apex) or the authority section (a name inside the zone)."""
    for section in (response.answer, response.authority):
        for rrset in section:
            if rrset.rdtype == SOA and owner.is_subdomain(rrset.name):
                return rrset.name
    return None


def _raise_for_answer(
    response: dns.message.Message, *, owner: dns.name.Name, server: ServerAddress
) -> None:
    rcode = response.rcode()
    if rcode == dns.rcode.SERVFAIL:
        raise DnsWriteError(
            f"The DNS server {server} could not answer for {_text(owner)} (SERVFAIL).",
            transient=True,
        )
    if rcode == dns.rcode.REFUSED:
        raise DnsWriteError(
            f"The DNS server {server} refused to answer for {_text(owner)}: it does not serve "
            "the zone holding it, or does not let the portal query it (REFUSED).",
            transient=False,
        )
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise DnsWriteError(
            f"The DNS server {server} answered {dns.rcode.to_text(rcode)} for {_text(owner)}.",
            transient=False,
        )
    if not response.flags & dns.flags.AA:
        raise DnsWriteError(
            f"The DNS server {server} is not authoritative for {_text(owner)}: it does not "
            "serve the zone holding it.",
            transient=False,
        )


def update_refusal(
    rcode: int, *, server: ServerAddress, zone: str, key: dns.tsig.Key
) -> DnsWriteError:
    """The error for an UPDATE answered with an error code (RFC 2136 section 2.2)."""
    key_name = _text(key.name)
    if rcode == dns.rcode.SERVFAIL:
        return DnsWriteError(
            f"The DNS server {server} could not apply the update to the zone {zone} (SERVFAIL).",
            transient=True,
        )
    if rcode in (dns.rcode.NXRRSET, dns.rcode.YXRRSET):
        # A prerequisite failed: the records changed between the portal's read and its update.
        return DnsConflictError(
            f"The DNS server {server} refused the update: the records changed while the "
            f"portal was updating them, nothing was written ({dns.rcode.to_text(rcode)}).",
            transient=True,
        )
    messages = {
        dns.rcode.REFUSED: f"refused the update: the TSIG key {key_name} may not change "
        f"the zone {zone}, or a record failed its checks, such as an MX or SRV record pointing "
        "to a name of the zone that has no address (REFUSED).",
        dns.rcode.NOTAUTH: f"is not authoritative for the zone {zone} (NOTAUTH).",
        dns.rcode.NOTZONE: f"refused the update: the name is outside the zone {zone} (NOTZONE).",
        dns.rcode.NOTIMP: "does not accept dynamic updates (NOTIMP).",
    }
    detail = messages.get(
        rcode, f"rejected the update to the zone {zone} ({dns.rcode.to_text(rcode)})."
    )
    return DnsWriteError(f"The DNS server {server} {detail}", transient=False)


def _failure(
    error: BaseException, *, server: ServerAddress, key: dns.tsig.Key, timeout: float
) -> DnsWriteError:
    """The error for a failure to talk to the primary at all, in plain words."""
    key_name = _text(key.name)
    if isinstance(error, TimeoutError | dns.exception.Timeout):
        return DnsWriteError(
            f"The DNS server {server} did not answer within {timeout:g} s.", transient=True
        )
    if isinstance(error, ConnectionRefusedError):
        return DnsWriteError(
            f"The DNS server {server} refused the connection: it is not running or not "
            "listening on that port.",
            transient=True,
        )
    if isinstance(error, socket.gaierror):
        return DnsWriteError(
            f"The address of the DNS server {server.host} could not be found ({error.strerror}).",
            transient=True,
        )
    if isinstance(error, OSError | EOFError):
        return DnsWriteError(
            f"The connection to the DNS server {server} failed ({error or 'closed'}).",
            transient=True,
        )
    tsig_refusals = {
        dns.tsig.PeerBadSignature: f"did not accept the TSIG key {key_name}: its secret is "
        "wrong (BADSIG).",
        dns.tsig.PeerBadKey: f"does not know the TSIG key {key_name} (BADKEY).",
        dns.tsig.PeerBadTime: "refused the signature's time: the portal's clock and the "
        "server's differ too much (BADTIME).",
    }
    for kind, detail in tsig_refusals.items():
        if isinstance(error, kind):
            return DnsWriteError(f"The DNS server {server} {detail}", transient=False)
    return DnsWriteError(
        f"The DNS server {server} gave an answer the portal cannot use ({error}).",
        transient=False,
    )


# The embedded store.


class EmbeddedWriter:
    """Records kept in the portal's tables (zones.models); each change bumps the serial."""

    def set_address_records(self, *, zone: str, name: str, ipv4: str, ipv6: str, ttl: int) -> None:
        origin, owner = _target(zone, name)
        wanted = _address_values(ipv4, ipv6)
        with transaction.atomic():
            store = _zone_for_write(_text(origin), _text(owner))
            changed = False
            for rtype, values in wanted.items():
                held = store.records.filter(name=_text(owner), rtype=_rtype(rtype))
                if {(r.value, r.ttl) for r in held} == {(value, ttl) for value in values}:
                    continue
                held.delete()
                EmbeddedRecord.objects.bulk_create(
                    EmbeddedRecord(
                        zone=store, name=_text(owner), rtype=_rtype(rtype), ttl=ttl, value=value
                    )
                    for value in values
                )
                changed = True
            if changed:
                _bump_serial(store)

    def read_address_records(self, *, zone: str, name: str) -> AddressRecords:
        origin, owner = _target(zone, name)
        store = _zone_holding(_text(origin), _text(owner))
        if store is None:
            return AddressRecords()
        records = store.records.filter(name=_text(owner))
        return AddressRecords(
            ipv4=tuple(sorted(r.value for r in records if r.rtype == RecordType.A)),
            ipv6=tuple(sorted(r.value for r in records if r.rtype == RecordType.AAAA)),
        )

    def set_txt(self, *, zone: str, name: str, value: str, ttl: int) -> None:
        origin, owner = _target(zone, name)
        with _invalid():
            txt_rdata(value)
        with transaction.atomic():
            store = _zone_for_write(_text(origin), _text(owner))
            held = store.records.filter(name=_text(owner), rtype=RecordType.TXT)
            if held.filter(value=value).exists():
                return
            # One TTL per record set (RFC 2181 5.2), as a primary does on such an update.
            held.update(ttl=ttl)
            EmbeddedRecord.objects.create(
                zone=store, name=_text(owner), rtype=RecordType.TXT, ttl=ttl, value=value
            )
            _bump_serial(store)

    def delete_txt(self, *, zone: str, name: str, value: str) -> None:
        origin, owner = _target(zone, name)
        with transaction.atomic():
            store = _zone_holding(_text(origin), _text(owner), lock=True)
            if store is None:
                return
            deleted, _ = store.records.filter(
                name=_text(owner), rtype=RecordType.TXT, value=value
            ).delete()
            if deleted:
                _bump_serial(store)

    def read_records(self, *, zone: str, name: str, rtype: str) -> tuple[str, ...]:
        origin, owner = _target(zone, name)
        _rdtype(rtype)
        store = _zone_holding(_text(origin), _text(owner))
        if store is None:
            return ()
        held = store.records.filter(name=_text(owner), rtype=rtype)
        return tuple(sorted(held.values_list("value", flat=True)))

    def change_records(
        self,
        *,
        zone: str,
        name: str,
        rtype: str,
        ttl: int,
        remove: Collection[str] = (),
        add: Collection[str] = (),
        expect: Collection[str] | None = None,
    ) -> bool:
        origin, owner = _target(zone, name)
        removing, adding = _rdatas(rtype, remove).keys(), _rdatas(rtype, add).keys()
        with transaction.atomic():
            store = _zone_holding(_text(origin), _text(owner), lock=True)
            if store is None and not adding:
                return False
            store = store or _zone_for_write(_text(origin), _text(owner))
            at_name = store.records.filter(name=_text(owner))
            held = set(at_name.filter(rtype=rtype).values_list("value", flat=True))
            wanted = (held - removing) | adding
            if wanted == held:
                return False
            _check_expected(expect, held, owner=owner, rtype=rtype)
            at_name.filter(rtype=rtype, value__in=removing & held).delete()
            if adding - held:
                _refuse_beside_alias(at_name, owner=_text(owner), rtype=rtype)
                # One TTL per record set (RFC 2181 5.2), as a primary does on such an update.
                at_name.filter(rtype=rtype).update(ttl=ttl)
            EmbeddedRecord.objects.bulk_create(
                EmbeddedRecord(zone=store, name=_text(owner), rtype=rtype, ttl=ttl, value=value)
                for value in adding - held
            )
            _bump_serial(store)
            return True


def _refuse_beside_alias(at_name, *, owner: str, rtype: str) -> None:
    """RFC 1034 3.6.2: a CNAME has no other record beside it."""
    others = at_name.exclude(rtype=rtype)
    if rtype == RecordType.CNAME and others.exists():
        raise DnsWriteError(
            f"{owner} has other records, so it cannot be an alias (CNAME): remove them and "
            "try again.",
            transient=False,
        )
    alias = others.filter(rtype=RecordType.CNAME).first()
    if alias is not None:
        raise DnsWriteError(
            f"{owner} is an alias (CNAME to {alias.value}), which cannot also have {rtype} "
            "records: remove the CNAME record and try again.",
            transient=False,
        )


def _rtype(rdtype: int) -> str:
    return dns.rdatatype.to_text(rdtype)


def _zone_holding(zone: str, owner: str, *, lock: bool = False) -> EmbeddedZone | None:
    """The most specific stored zone holding owner, among zone and its sub-zones."""
    candidates = [name for name in parent_domains(owner) if name.endswith(f".{zone}")]
    zones = EmbeddedZone.objects.filter(name__in=[*candidates, zone])
    if lock:
        zones = zones.select_for_update()
    return zones.order_by(Length("name").desc()).first()


def _zone_for_write(zone: str, owner: str) -> EmbeddedZone:
    """The zone to write owner into, locked until the transaction ends; created if new."""
    store = _zone_holding(zone, owner, lock=True)
    if store is None:
        EmbeddedZone.objects.get_or_create(name=zone)
        store = _zone_holding(zone, owner, lock=True)
    return store


def _bump_serial(store: EmbeddedZone) -> None:
    store.serial = next_serial(store.serial, today=timezone.now().date())
    store.save(update_fields=["serial", "updated_at"])
