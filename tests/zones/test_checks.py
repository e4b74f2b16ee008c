"""Record checks: real queries to BIND9 as the resolver, and the pure comparison."""

import socket

import pytest

from zones.checks import (
    CheckStatus,
    RecordCheck,
    check_address_records,
    compare_records,
    txt_record_served,
)
from zones.errors import DnsCheckError
from zones.writers import get_writer

NAME = "mail.example.test"
IPV4 = "203.0.113.10"
IPV6 = "2001:db8:100::10"


@pytest.fixture
def resolver(bind, settings):
    bind.configure(settings)
    return bind


def check(name: str = NAME):
    return check_address_records(name=name, ipv4=IPV4, ipv6=IPV6)


def test_verified_once_the_records_are_served(resolver):
    get_writer().set_address_records(zone="example.test", name=NAME, ipv4=IPV4, ipv6=IPV6, ttl=3600)

    result = check()

    assert result.verified is True
    assert result.records == (
        RecordCheck(rtype="A", name=NAME, expected=IPV4, found=(IPV4,), status=CheckStatus.OK),
        RecordCheck(rtype="AAAA", name=NAME, expected=IPV6, found=(IPV6,), status="ok"),
    )


def test_a_record_pointing_elsewhere_is_wrong_with_what_was_found(resolver):
    resolver.set_records(NAME, "A", ["192.0.2.44"])
    resolver.set_records(NAME, "AAAA", [IPV6])

    result = check()

    assert result.verified is False
    a, aaaa = result.records
    assert (a.status, a.expected, a.found) == ("wrong", IPV4, ("192.0.2.44",))
    assert aaaa.status == "ok"


def test_an_extra_address_beside_the_expected_one_is_wrong(resolver):
    resolver.set_records(NAME, "A", [IPV4, "192.0.2.44"])
    a, _aaaa = check().records
    assert (a.status, a.found) == ("wrong", ("192.0.2.44", IPV4))


def test_absent_records_are_missing(resolver):
    resolver.set_records(NAME, "A", [IPV4])

    nxdomain = check("absent.example.test")
    no_aaaa = check()

    assert [r.status for r in nxdomain.records] == ["missing", "missing"]
    assert [r.found for r in nxdomain.records] == [(), ()]
    assert [r.status for r in no_aaaa.records] == ["ok", "missing"]
    assert no_aaaa.verified is False


def test_an_alias_is_followed(resolver):
    resolver.set_records(f"target.{resolver.zone}", "A", [IPV4])
    resolver.set_records(NAME, "CNAME", [f"target.{resolver.zone}."])
    a, aaaa = check().records
    assert (a.status, a.found) == ("ok", (IPV4,))
    assert aaaa.status == "missing"


def test_a_resolver_may_be_named_by_host_name(resolver, settings):
    settings.DNS_CHECK_RESOLVERS = [f"localhost:{resolver.port}"]
    resolver.set_records(NAME, "A", [IPV4])
    assert check().records[0].status == "ok"


def test_a_resolver_that_refuses_is_a_transient_error(resolver):
    with pytest.raises(DnsCheckError) as caught:
        check("mail.not-served.test")
    assert caught.value.transient is True
    assert caught.value.message == (
        f"The DNS resolvers ({resolver.address}) could not answer for the A record of "
        "mail.not-served.test (answered REFUSED)."
    )


def test_a_silent_resolver_is_a_transient_timeout(settings):
    with socket.socket(type=socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        settings.DNS_CHECK_RESOLVERS = [f"127.0.0.1:{silent.getsockname()[1]}"]
        settings.DNS_TIMEOUT = 0.3
        with pytest.raises(DnsCheckError, match=r"did not answer within 0\.3 s") as caught:
            check()
    assert caught.value.transient is True


def test_a_bad_name_is_a_permanent_error(resolver):
    with pytest.raises(DnsCheckError, match="is not a DNS name") as caught:
        check("mail..example.test")
    assert caught.value.transient is False


def test_a_wrong_resolver_setting_is_a_permanent_error(settings):
    settings.DNS_CHECK_RESOLVERS = ["127.0.0.1:domain"]
    with pytest.raises(DnsCheckError, match="DNS_CHECK_RESOLVERS is wrong") as caught:
        check()
    assert caught.value.transient is False


def test_txt_record_served(resolver):
    acme = "_acme-challenge.mail.example.test"
    assert txt_record_served(name=acme, value="token") is False

    resolver.set_records(acme, "TXT", ['"other"'])
    assert txt_record_served(name=acme, value="token") is False

    long_value = "t" * 300
    resolver.set_records(acme, "TXT", ['"other"', '"token"', f'"{"t" * 255}" "{"t" * 45}"'])
    assert txt_record_served(name=acme, value="token") is True
    assert txt_record_served(name=acme, value=long_value) is True


def test_txt_record_served_raises_when_the_resolvers_fail(resolver, settings):
    settings.DNS_TIMEOUT = 0.3
    resolver.stop()
    with pytest.raises(DnsCheckError) as caught:
        txt_record_served(name="_acme-challenge.mail.example.test", value="token")
    assert caught.value.transient is True


# The comparison alone


@pytest.mark.parametrize(
    ("rtype", "expected", "found", "status", "found_after"),
    [
        ("A", "192.0.2.1", ["192.0.2.1"], "ok", ("192.0.2.1",)),
        ("A", "192.0.2.1", [], "missing", ()),
        ("A", "192.0.2.1", ["192.0.2.9"], "wrong", ("192.0.2.9",)),
        ("A", "192.0.2.1", ["192.0.2.1", "192.0.2.1"], "ok", ("192.0.2.1",)),
        ("AAAA", "2001:db8::1", ["2001:0db8:0:0::1"], "ok", ("2001:db8::1",)),
        (
            "AAAA",
            "2001:DB8::1",
            ["2001:db8::2", "2001:db8::1"],
            "wrong",
            ("2001:db8::1", "2001:db8::2"),
        ),
    ],
)
def test_compare_records(rtype, expected, found, status, found_after):
    result = compare_records(rtype=rtype, name=NAME, expected=expected, found=found)
    assert (result.status, result.found) == (status, found_after)
