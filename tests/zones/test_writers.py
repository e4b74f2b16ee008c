"""The DNS Assist writers, asserted on what a real BIND9 serves and on the embedded store."""

import socket
import time

import dns.rcode
import pytest

from zones import writers
from zones.errors import DnsConflictError, DnsWriteError
from zones.models import EmbeddedRecord, EmbeddedZone
from zones.records import AddressRecords, ServerAddress, tsig_key
from zones.writers import EmbeddedWriter, Rfc2136Writer, get_writer, update_refusal

ZONE = "example.test"
NAME = "mail.example.test"
IPV4 = "203.0.113.10"
IPV6 = "2001:db8:100::10"
TTL = 3600
ACME = "_acme-challenge.mail.example.test"


@pytest.fixture
def primary(bind, settings):
    """The BIND9 primary, with the portal's settings pointing at it."""
    bind.configure(settings)
    return bind


def set_mail(writer, **changes) -> None:
    values = {"zone": ZONE, "name": NAME, "ipv4": IPV4, "ipv6": IPV6, "ttl": TTL} | changes
    writer.set_address_records(**values)


# get_writer


def test_get_writer_is_embedded_without_an_update_server(settings):
    settings.DNS_UPDATE_SERVER = ""
    assert isinstance(get_writer(), EmbeddedWriter)


def test_get_writer_sends_updates_to_the_configured_primary(primary):
    writer = get_writer()
    assert isinstance(writer, Rfc2136Writer)
    assert str(writer.server) == primary.address


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("DNS_UPDATE_SERVER", "127.0.0.1:dns", "DNS_UPDATE_SERVER is wrong"),
        ("DNS_TSIG_SECRET", "not base64!", "not valid base64"),
        ("DNS_TSIG_SECRET", "", "No secret given"),
        ("DNS_TSIG_ALGORITHM", "hmac-sha3", "not a supported TSIG algorithm"),
    ],
)
def test_get_writer_refuses_wrong_settings(primary, settings, setting, value, message):
    setattr(settings, setting, value)
    with pytest.raises(DnsWriteError, match=message) as caught:
        get_writer()
    assert caught.value.transient is False


# RFC 2136 against BIND9


def test_set_address_records_serves_exactly_that_a_and_aaaa(primary):
    before = primary.records()

    set_mail(get_writer())

    assert primary.served(NAME, "A") == {IPV4}
    assert primary.served(NAME, "AAAA") == {IPV6}
    assert primary.ttl(NAME, "A") == TTL
    assert primary.records() - before == {("mail", "A", IPV4), ("mail", "AAAA", IPV6)}
    assert before - primary.records() == set()


def test_the_primary_may_be_named_by_host_name(primary, settings):
    settings.DNS_UPDATE_SERVER = f"localhost:{primary.port}"
    set_mail(get_writer())
    assert primary.served(NAME, "A") == {IPV4}


def test_set_address_records_twice_sends_no_second_update(primary):
    writer = get_writer()
    set_mail(writer)
    serial, updates = primary.serial(), primary.updates_received()

    set_mail(writer)
    set_mail(writer, ipv6="2001:db8:100:0::0010")  # the same address, written differently

    assert primary.serial() == serial
    assert primary.updates_received() == updates
    assert primary.served(NAME, "AAAA") == {IPV6}


def test_set_address_records_replaces_stale_values_only_at_that_name(primary):
    primary.set_records(NAME, "A", ["192.0.2.1", "192.0.2.2"])
    primary.set_records(NAME, "AAAA", ["2001:db8::1"])
    primary.set_records(NAME, "MX", [f"10 {NAME}."])
    others = {record for record in primary.records() if record[0] != "mail"}
    serial = primary.serial()

    set_mail(get_writer())

    assert primary.served(NAME, "A") == {IPV4}
    assert primary.served(NAME, "AAAA") == {IPV6}
    assert primary.served(NAME, "MX") == {f"10 {NAME}."}
    assert {record for record in primary.records() if record[0] != "mail"} == others
    assert primary.served(ZONE, "MX") == {f"10 mx.{ZONE}."}
    assert primary.served(f"www.{ZONE}", "A") == {"192.0.2.80"}
    assert primary.serial() == serial + 1


def test_an_ipv4_mapped_address_is_compared_in_one_form(primary):
    writer = get_writer()
    set_mail(writer, ipv6="::ffff:192.0.2.10")
    serial = primary.serial()

    set_mail(writer, ipv6="::ffff:c000:20a")

    assert primary.serial() == serial
    assert writer.read_address_records(zone=ZONE, name=NAME).ipv6 == ("::ffff:c000:20a",)


def test_set_address_records_rewrites_a_record_whose_ttl_differs(primary):
    writer = get_writer()
    set_mail(writer)
    set_mail(writer, ttl=600)
    assert primary.ttl(NAME, "A") == 600
    assert primary.ttl(NAME, "AAAA") == 600


def test_set_address_records_in_a_sub_zone(primary):
    parent = primary.serial(ZONE)
    name = f"mail.{primary.sub_zone}"

    set_mail(get_writer(), zone=primary.sub_zone, name=name)

    assert primary.served(name, "A") == {IPV4}
    assert ("mail", "A", IPV4) in primary.records(primary.sub_zone)
    assert primary.serial(ZONE) == parent


def test_set_address_records_finds_the_sub_zone_the_primary_serves(primary):
    """The customer's zone is example.test; the primary holds sub.example.test apart."""
    name = f"mail.{primary.sub_zone}"

    set_mail(get_writer(), zone=ZONE, name=name)

    assert ("mail", "AAAA", IPV6) in primary.records(primary.sub_zone)
    assert not any("sub" in record[0] for record in primary.records(ZONE))


def test_a_zone_the_primary_does_not_serve_is_a_permanent_error(primary):
    with pytest.raises(DnsWriteError) as caught:
        set_mail(get_writer(), zone="other.test", name="mail.other.test")
    assert caught.value.transient is False
    assert "refused to answer for mail.other.test" in caught.value.message


def test_a_zone_the_primary_serves_only_as_part_of_its_parent_is_a_permanent_error(primary):
    """The primary holds example.test only: deep.example.test is no zone of its own there."""
    with pytest.raises(
        DnsWriteError, match=r"does not serve the zone deep\.example\.test"
    ) as caught:
        set_mail(get_writer(), zone="deep.example.test", name="mail.deep.example.test")
    assert caught.value.transient is False


def test_a_zone_closed_to_the_key_is_refused(primary):
    name = f"mail.{primary.read_only_zone}"
    with pytest.raises(DnsWriteError) as caught:
        set_mail(get_writer(), zone=primary.read_only_zone, name=name)
    assert caught.value.transient is False
    assert caught.value.message == (
        f"The DNS server {primary.address} refused the update: the TSIG key portal-test "
        f"may not change the zone {primary.read_only_zone}, or a record failed its checks, "
        "such as an MX or SRV record pointing to a name of the zone that has no address "
        "(REFUSED)."
    )
    assert primary.served(name, "A") == set()


def test_a_name_outside_the_zone_is_refused_before_any_query(primary):
    updates = primary.updates_received()
    with pytest.raises(
        DnsWriteError, match=r"mail\.other\.test is not inside the zone example\.test"
    ):
        set_mail(get_writer(), name="mail.other.test")
    assert primary.updates_received() == updates


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"ipv4": "203.0.113"}, "not an IPv4 address"), ({"ipv6": IPV4}, "not an IPv6 address")],
)
def test_a_bad_address_is_a_permanent_error(primary, changes, message):
    with pytest.raises(DnsWriteError, match=message) as caught:
        set_mail(get_writer(), **changes)
    assert caught.value.transient is False
    assert primary.served(NAME, "A") == set()


def test_a_wrong_tsig_secret_is_a_permanent_error_in_plain_words(primary, settings):
    settings.DNS_TSIG_SECRET = "c2VjcmV0IHRoYXQgQklORCBkb2VzIG5vdCBrbm93IQ=="
    serial = primary.serial()

    with pytest.raises(DnsWriteError) as caught:
        set_mail(get_writer())

    assert caught.value.transient is False
    assert caught.value.message == (
        f"The DNS server {primary.address} did not accept the TSIG key portal-test: "
        "its secret is wrong (BADSIG)."
    )
    assert primary.served(NAME, "A") == set()
    assert primary.serial() == serial


def test_an_unknown_tsig_key_is_a_permanent_error(primary, settings):
    settings.DNS_TSIG_KEY_NAME = "someone-else"
    with pytest.raises(DnsWriteError, match=r"does not know the TSIG key someone-else \(BADKEY\)"):
        set_mail(get_writer())


def test_a_stopped_server_is_a_transient_error(primary):
    primary.stop()
    with pytest.raises(DnsWriteError) as caught:
        set_mail(get_writer())
    assert caught.value.transient is True
    assert caught.value.message == (
        f"The DNS server {primary.address} refused the connection: it is not running or "
        "not listening on that port."
    )


def test_a_server_that_does_not_answer_is_a_transient_timeout(primary, settings):
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        settings.DNS_UPDATE_SERVER = f"127.0.0.1:{port}"
        settings.DNS_TIMEOUT = 0.3
        started = time.monotonic()
        with pytest.raises(DnsWriteError) as caught:
            set_mail(get_writer())
    assert time.monotonic() - started < 2
    assert caught.value.transient is True
    assert caught.value.message == f"The DNS server 127.0.0.1:{port} did not answer within 0.3 s."


def test_a_cname_at_the_name_is_reported_and_left_alone(primary):
    primary.set_records(NAME, "CNAME", [f"www.{ZONE}."])
    with pytest.raises(DnsWriteError) as caught:
        set_mail(get_writer())
    assert caught.value.transient is False
    assert caught.value.message == (
        "mail.example.test is an alias (CNAME to www.example.test.), which cannot also have "
        "A records: remove the CNAME record and try again."
    )
    assert primary.served(NAME, "CNAME") == {f"www.{ZONE}."}


def test_read_address_records_reads_the_primary(primary):
    writer = get_writer()
    assert writer.read_address_records(zone=ZONE, name=NAME) == AddressRecords()

    primary.set_records(NAME, "A", ["192.0.2.9", "192.0.2.1"])
    assert writer.read_address_records(zone=ZONE, name=NAME) == AddressRecords(
        ipv4=("192.0.2.1", "192.0.2.9")
    )

    set_mail(writer)
    assert writer.read_address_records(zone=ZONE, name=NAME) == AddressRecords(
        ipv4=(IPV4,), ipv6=(IPV6,)
    )


def test_set_txt_adds_the_value_beside_the_others(primary):
    writer = get_writer()
    primary.set_records(ACME, "TXT", ['"earlier-token"'])

    writer.set_txt(zone=ZONE, name=ACME, value="token-1", ttl=60)
    serial = primary.serial()
    writer.set_txt(zone=ZONE, name=ACME, value="token-1", ttl=60)

    assert primary.served(ACME, "TXT") == {"earlier-token", "token-1"}
    assert primary.serial() == serial


def test_delete_txt_removes_only_that_value(primary):
    writer = get_writer()
    writer.set_txt(zone=ZONE, name=ACME, value="token-1", ttl=60)
    writer.set_txt(zone=ZONE, name=ACME, value="token-2", ttl=60)

    writer.delete_txt(zone=ZONE, name=ACME, value="token-1")
    serial = primary.serial()
    writer.delete_txt(zone=ZONE, name=ACME, value="token-1")

    assert primary.served(ACME, "TXT") == {"token-2"}
    assert primary.serial() == serial
    assert primary.served(ZONE, "TXT") == {"v=spf1 mx -all"}


def test_a_txt_value_longer_than_one_string_round_trips(primary):
    value = "x" * 300 + ' "quoted" \\ end'
    get_writer().set_txt(zone=ZONE, name=ACME, value=value, ttl=60)
    assert primary.served(ACME, "TXT") == {value}


# The embedded store


@pytest.mark.django_db
def test_embedded_set_and_read_address_records():
    writer = EmbeddedWriter()

    set_mail(writer)

    assert writer.read_address_records(zone=ZONE, name=NAME) == AddressRecords(
        ipv4=(IPV4,), ipv6=(IPV6,)
    )
    zone = EmbeddedZone.objects.get(name=ZONE)
    assert zone.serial > 2000_01_01_00
    assert {(r.name, r.rtype, r.ttl, r.value) for r in zone.records.all()} == {
        (NAME, "A", TTL, IPV4),
        (NAME, "AAAA", TTL, IPV6),
    }


@pytest.mark.django_db
def test_embedded_rerun_changes_nothing():
    writer = EmbeddedWriter()
    set_mail(writer)
    zone = EmbeddedZone.objects.get(name=ZONE)
    rows = set(EmbeddedRecord.objects.values_list("pk", "value"))

    set_mail(writer, ipv6="2001:0db8:0100::0010")

    zone.refresh_from_db()
    assert set(EmbeddedRecord.objects.values_list("pk", "value")) == rows
    assert EmbeddedZone.objects.get(name=ZONE).serial == zone.serial


@pytest.mark.django_db
def test_embedded_replaces_stale_values_and_bumps_the_serial():
    writer = EmbeddedWriter()
    set_mail(writer)
    writer.set_txt(zone=ZONE, name=ACME, value="token", ttl=60)
    serial = EmbeddedZone.objects.get(name=ZONE).serial

    set_mail(writer, ipv4="198.51.100.7")

    assert writer.read_address_records(zone=ZONE, name=NAME) == AddressRecords(
        ipv4=("198.51.100.7",), ipv6=(IPV6,)
    )
    assert EmbeddedZone.objects.get(name=ZONE).serial == serial + 1
    assert EmbeddedRecord.objects.filter(name=ACME, value="token").exists()


@pytest.mark.django_db
def test_embedded_uses_the_most_specific_zone_it_holds():
    writer = EmbeddedWriter()
    writer.set_txt(zone="sub.example.test", name="_x.sub.example.test", value="v", ttl=60)

    set_mail(writer, zone=ZONE, name="mail.sub.example.test")

    assert (
        EmbeddedRecord.objects.filter(
            zone__name="sub.example.test", name="mail.sub.example.test"
        ).count()
        == 2
    )
    assert not EmbeddedZone.objects.filter(name=ZONE).exists()


@pytest.mark.django_db
def test_embedded_txt_values_are_added_and_removed_one_by_one():
    writer = EmbeddedWriter()
    writer.set_txt(zone=ZONE, name=ACME, value="token-1", ttl=300)
    writer.set_txt(zone=ZONE, name=ACME, value="token-2", ttl=60)
    writer.set_txt(zone=ZONE, name=ACME, value="token-2", ttl=60)

    held = EmbeddedRecord.objects.filter(name=ACME)
    assert {(r.value, r.ttl) for r in held} == {("token-1", 60), ("token-2", 60)}

    serial = EmbeddedZone.objects.get(name=ZONE).serial
    writer.delete_txt(zone=ZONE, name=ACME, value="token-1")
    writer.delete_txt(zone=ZONE, name=ACME, value="token-1")
    writer.delete_txt(zone="unknown.test", name="_acme-challenge.unknown.test", value="token-1")

    assert set(held.values_list("value", flat=True)) == {"token-2"}
    assert EmbeddedZone.objects.get(name=ZONE).serial == serial + 1
    assert not EmbeddedZone.objects.filter(name="unknown.test").exists()


@pytest.mark.django_db
def test_embedded_refuses_a_name_outside_the_zone():
    with pytest.raises(DnsWriteError, match="not inside the zone") as caught:
        set_mail(EmbeddedWriter(), name="mail.other.test")
    assert caught.value.transient is False
    assert not EmbeddedZone.objects.exists()


@pytest.mark.parametrize(
    ("rcode", "transient", "detail"),
    [
        (
            dns.rcode.SERVFAIL,
            True,
            "could not apply the update to the zone example.test (SERVFAIL)",
        ),
        (dns.rcode.NOTAUTH, False, "is not authoritative for the zone example.test (NOTAUTH)"),
        (dns.rcode.NOTIMP, False, "does not accept dynamic updates (NOTIMP)"),
        (
            dns.rcode.NXRRSET,
            True,
            "refused the update: the records changed while the portal was updating them, "
            "nothing was written (NXRRSET)",
        ),
        (dns.rcode.YXDOMAIN, False, "rejected the update to the zone example.test (YXDOMAIN)"),
    ],
)
def test_update_refusal_explains_the_answer(rcode, transient, detail):
    error = update_refusal(
        rcode,
        server=ServerAddress(host="192.0.2.53", port=53),
        zone=ZONE,
        key=tsig_key(name="portal", secret="c2VjcmV0", algorithm="hmac-sha256"),
    )
    assert error.transient is transient
    assert error.message == f"The DNS server 192.0.2.53:53 {detail}."
    assert isinstance(error, DnsConflictError) is (rcode == dns.rcode.NXRRSET)


# Any record set: MX, SRV, CNAME, TXT


def test_change_records_adds_an_mx_beside_the_others_and_reads_them(primary):
    writer = get_writer()

    changed = writer.change_records(
        zone=ZONE, name=ZONE, rtype="MX", ttl=TTL, add=["20 MX.Filter.test."]
    )

    assert changed is True
    assert primary.served(ZONE, "MX") == {f"10 mx.{ZONE}.", "20 mx.filter.test."}
    assert writer.read_records(zone=ZONE, name=ZONE, rtype="MX") == (
        "10 mx.example.test",
        "20 mx.filter.test",
    )
    serial = primary.serial()
    assert (
        writer.change_records(zone=ZONE, name=ZONE, rtype="MX", ttl=TTL, add=["20 mx.filter.test"])
        is False
    )
    assert primary.serial() == serial


def test_change_records_replaces_only_while_the_set_is_as_expected(primary):
    writer = get_writer()
    before = primary.records()

    with pytest.raises(
        DnsConflictError, match=r"now 10 mx\.example\.test instead of nothing"
    ) as caught:
        writer.change_records(
            zone=ZONE, name=ZONE, rtype="MX", ttl=TTL, add=["10 px.hoster.test"], expect=[]
        )

    assert caught.value.transient is False
    assert primary.records() == before
    writer.change_records(
        zone=ZONE,
        name=ZONE,
        rtype="MX",
        ttl=TTL,
        remove=["10 mx.example.test"],
        add=["10 px.hoster.test"],
        expect=["10 mx.example.test"],
    )
    assert primary.served(ZONE, "MX") == {"10 px.hoster.test."}


def test_a_change_made_between_the_read_and_the_update_is_not_overwritten(primary, monkeypatch):
    """Another tool changes the MX set just after the writer read it: the update's
    prerequisite (RFC 2136 3.2) makes BIND refuse it, and nothing of the portal's is written."""
    read = writers._Session.rrset

    def read_then_race(session, owner, rtype):
        held = read(session, owner, rtype)
        monkeypatch.setattr(writers._Session, "rrset", read)
        primary.set_records(ZONE, "MX", ["5 mx.other.test."], ttl=TTL)
        return held

    monkeypatch.setattr(writers._Session, "rrset", read_then_race)

    with pytest.raises(DnsConflictError, match=r"changed while the portal was updating") as caught:
        get_writer().change_records(
            zone=ZONE,
            name=ZONE,
            rtype="MX",
            ttl=TTL,
            remove=["10 mx.example.test"],
            add=["10 px.hoster.test"],
            expect=["10 mx.example.test"],
        )

    assert caught.value.transient is True
    assert primary.served(ZONE, "MX") == {"5 mx.other.test."}


def test_change_records_writes_an_srv_and_a_cname(primary):
    writer = get_writer()
    srv = f"_autodiscover._tcp.{ZONE}"
    alias = f"k3x9-check.{ZONE}"

    writer.change_records(zone=ZONE, name=srv, rtype="SRV", ttl=TTL, add=["0 0 443 px.hoster.test"])
    writer.change_records(zone=ZONE, name=alias, rtype="CNAME", ttl=TTL, add=["check.hoster.test"])

    assert primary.served(srv, "SRV") == {"0 0 443 px.hoster.test."}
    assert primary.served(alias, "CNAME") == {"check.hoster.test."}
    assert writer.read_records(zone=ZONE, name=alias, rtype="CNAME") == ("check.hoster.test",)
    writer.change_records(
        zone=ZONE, name=alias, rtype="CNAME", ttl=TTL, remove=["check.hoster.test"]
    )
    assert primary.served(alias, "CNAME") == set()


def test_a_cname_beside_other_records_is_refused(primary):
    with pytest.raises(DnsWriteError, match="a CNAME cannot be beside other records") as caught:
        get_writer().change_records(
            zone=ZONE, name=f"www.{ZONE}", rtype="CNAME", ttl=TTL, add=["check.hoster.test"]
        )
    assert caught.value.transient is False
    assert primary.served(f"www.{ZONE}", "A") == {"192.0.2.80"}


def test_change_records_refuses_bad_values_before_any_query(primary):
    updates = primary.updates_received()
    with pytest.raises(DnsWriteError, match="is not a valid MX record") as caught:
        get_writer().change_records(zone=ZONE, name=ZONE, rtype="MX", ttl=TTL, add=["ten mx.test"])
    assert caught.value.transient is False
    with pytest.raises(DnsWriteError, match="does not write NS records"):
        get_writer().change_records(zone=ZONE, name=ZONE, rtype="NS", ttl=TTL, add=["ns.test"])
    assert primary.updates_received() == updates


@pytest.mark.django_db
def test_embedded_change_records_with_the_same_rules():
    writer = EmbeddedWriter()
    alias = f"k3x9-check.{ZONE}"
    writer.change_records(zone=ZONE, name=ZONE, rtype="MX", ttl=TTL, add=["10 mx.example.test"])
    writer.change_records(zone=ZONE, name=alias, rtype="CNAME", ttl=TTL, add=["check.hoster.test"])
    serial = EmbeddedZone.objects.get(name=ZONE).serial

    with pytest.raises(DnsConflictError, match="changed since they were read"):
        writer.change_records(
            zone=ZONE, name=ZONE, rtype="MX", ttl=TTL, add=["5 a.test"], expect=[]
        )
    with pytest.raises(DnsWriteError, match="is an alias"):
        writer.change_records(zone=ZONE, name=alias, rtype="TXT", ttl=TTL, add=["x"])
    with pytest.raises(DnsWriteError, match="cannot be an alias"):
        writer.change_records(zone=ZONE, name=ZONE, rtype="CNAME", ttl=TTL, add=["x.test"])
    assert (
        writer.change_records(
            zone=ZONE, name=ZONE, rtype="MX", ttl=TTL, add=["10 MX.example.test."]
        )
        is False
    )
    assert EmbeddedZone.objects.get(name=ZONE).serial == serial

    writer.change_records(
        zone=ZONE, name=ZONE, rtype="MX", ttl=TTL, remove=["10 mx.example.test"], add=["10 px.test"]
    )
    assert writer.read_records(zone=ZONE, name=ZONE, rtype="MX") == ("10 px.test",)
    assert writer.read_records(zone="other.test", name="other.test", rtype="MX") == ()
