"""Checks of a mail domain's records: real queries to BIND9, and the pure comparison."""

import dns.nameserver
import dns.resolver
import pytest

from zones.assist import mail_assist_plan, mail_assist_write, served_mail
from zones.checks import (
    AuthoritativeServers,
    CheckStatus,
    Found,
    MailCheckRules,
    check_mail_records,
    compare_mail_record,
    served_mail_found,
)
from zones.errors import DnsCheckError
from zones.mail import (
    MailExchanger,
    ServedMail,
    mail_records,
    ownership_record,
)
from zones.writers import get_writer

ZONE = "example.test"
SERVER = "px-1.hoster.test"
IPV4 = "203.0.113.10"
IPV6 = "2001:db8:100::10"
KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "Q" * 350
TARGET = f"check.{ZONE}"  # DOMAIN_CHECK_TARGET, here a name BIND serves


@pytest.fixture
def dns_server(bind, settings):
    bind.configure(settings)
    return bind


def mail(domain=ZONE, served=None):
    return mail_records(
        domain=domain,
        zone=ZONE,
        server_name=SERVER,
        ipv4=IPV4,
        ipv6=IPV6,
        exchangers=(MailExchanger(host=SERVER, priority=10),),
        dkim={"pex-1": KEY},
        served=served or ServedMail(),
        ttl=3600,
    )


def rules(expected, *, exclusive=True):
    return MailCheckRules(
        spf_mechanisms=expected.spf_mechanisms,
        exclusive=exclusive,
        mx_hosts=tuple(record.value.split()[-1] for record in expected.of("mx")),
    )


def statuses(expected, *, exclusive=True, servers=None):
    checks = check_mail_records(
        records=expected.records, rules=rules(expected, exclusive=exclusive), servers=servers
    )
    return {check.record.purpose: (check.status, check.found) for check in checks}


def test_records_written_by_dns_assist_are_ok(dns_server):
    writer = get_writer()
    expected = mail(served=served_mail(writer=writer, zone=ZONE, domain=ZONE))
    mail_assist_write(
        writer=writer, plan=mail_assist_plan(writer=writer, mail=expected, authoritative=True)
    )

    found = statuses(expected)

    assert found == {
        "mx": ("ok", (f"10 {SERVER}",)),
        "autodiscover": ("ok", (f"0 0 443 {SERVER}",)),
        "spf": ("ok", (f"v=spf1 mx ip4:{IPV4} ip6:{IPV6} -all",)),
        "dkim": ("ok", (f"v=DKIM1; k=rsa; p={KEY}",)),
        "dmarc": ("missing", ()),  # a warning: the record is not required
    }
    assert [r.required for r in expected.of("dmarc")] == [False]


def test_what_the_domain_serves_is_read_from_its_servers(dns_server):
    assert served_mail_found(domain=ZONE) == ServedMail(spf="v=spf1 mx -all", has_dmarc=False)

    dns_server.set_records(ZONE, "TXT", ['"google-site-verification=x"'])
    dns_server.set_records(f"_dmarc.{ZONE}", "TXT", ['"v=DMARC1; p=none"'])
    assert served_mail_found(domain=ZONE) == ServedMail(spf=None, has_dmarc=True)


def test_a_zone_without_our_records(dns_server):
    """The baseline zone: MX to its own server, SPF without our addresses."""
    expected = mail(served=served_mail_found(domain=ZONE))
    assert expected.of("spf")[0].value == f"v=spf1 mx ip4:{IPV4} ip6:{IPV6} -all"

    assert statuses(expected) == {
        "mx": ("wrong", ("10 mx.example.test",)),
        "autodiscover": ("missing", ()),
        "spf": ("wrong", ("v=spf1 mx -all",)),
        "dkim": ("missing", ()),
        "dmarc": ("missing", ()),
    }


def test_mx_beside_another_server_is_ok_only_when_the_domain_is_shared(dns_server):
    dns_server.set_records(ZONE, "MX", ["10 mx.example.test.", f"20 {SERVER}."])
    expected = mail()

    assert statuses(expected, exclusive=True)["mx"][0] == "wrong"
    assert statuses(expected, exclusive=False)["mx"] == (
        "ok",
        ("10 mx.example.test", f"20 {SERVER}"),
    )


def test_dkim_is_compared_by_its_public_key(dns_server):
    name = f"pex-1._domainkey.{ZONE}"
    dns_server.set_records(name, "TXT", ['"v=DKIM1; k=rsa; p=QUJD"'])
    assert statuses(mail())["dkim"][0] == "wrong"

    # The same key, written with other tags and split elsewhere, is the same record.
    dns_server.set_records(
        name, "TXT", [f'"v=DKIM1; p={KEY[:100]}" "{KEY[100:300]}" " {KEY[300:]}"']
    )
    assert statuses(mail())["dkim"][0] == "ok"


def test_two_spf_records_are_wrong(dns_server):
    dns_server.set_records(ZONE, "TXT", [f'"v=spf1 ip4:{IPV4} ip6:{IPV6} -all"', '"v=spf1 a -all"'])
    assert statuses(mail())["spf"][0] == "wrong"


def test_dmarc_of_the_customer_is_ok(dns_server):
    dns_server.set_records(f"_dmarc.{ZONE}", "TXT", ['"v=DMARC1; p=reject"'])
    assert statuses(mail())["dmarc"] == ("ok", ("v=DMARC1; p=reject",))


def test_an_autodiscover_alias_is_followed_into_another_zone(dns_server):
    """The SRV's name is an alias to a name of the sub-zone, which holds the record."""
    target = f"_autodiscover._tcp.{dns_server.sub_zone}"
    dns_server.set_records(target, "SRV", [f"0 0 443 {SERVER}."], zone=dns_server.sub_zone)
    dns_server.set_records(f"_autodiscover._tcp.{ZONE}", "CNAME", [f"{target}."])

    assert statuses(mail())["autodiscover"] == ("ok", (f"0 0 443 {SERVER}",))


# The ownership CNAME


def ownership():
    return ownership_record(domain=ZONE, zone=ZONE, token="k3x9", target=TARGET, ttl=300)


def check_ownership(servers=None):
    (check,) = check_mail_records(records=[ownership()], rules=rules(mail()), servers=servers)
    return check.status, check.found


def test_ownership_cname(dns_server):
    name = f"k3x9-check.{ZONE}"
    assert check_ownership() == ("missing", ())

    dns_server.set_records(name, "CNAME", [f"{TARGET}."])
    assert check_ownership() == ("ok", (TARGET,))

    dns_server.set_records(name, "CNAME", ["elsewhere.example.test."])
    assert check_ownership() == ("wrong", ("elsewhere.example.test",))


def test_addresses_in_place_of_the_cname_are_ok_when_they_match_the_target(dns_server):
    name = f"k3x9-check.{ZONE}"
    dns_server.set_records(TARGET, "A", ["192.0.2.53"])
    dns_server.set_records(name, "A", ["192.0.2.53"])
    assert check_ownership() == ("ok", ("192.0.2.53",))

    dns_server.set_records(name, "A", ["192.0.2.54"])
    assert check_ownership() == ("wrong", ("192.0.2.54",))


# Which servers are asked


def test_the_zones_own_servers_are_found_and_asked(dns_server, settings):
    """Without DNS_CHECK_RESOLVERS: the NS of each zone (ns.example.test, 127.0.0.1), found
    through a bootstrap resolver, here BIND itself; its port is the test server's."""
    settings.DNS_CHECK_RESOLVERS = []
    bootstrap = dns.resolver.Resolver(configure=False)
    bootstrap.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", dns_server.port)]
    servers = AuthoritativeServers(bootstrap=bootstrap, timeout=2.0, port=dns_server.port)
    domain = dns_server.sub_zone
    dns_server.set_records(domain, "MX", [f"10 {SERVER}."], zone=domain)

    found = statuses(mail(domain=domain), servers=servers)
    assert found["mx"] == ("ok", (f"10 {SERVER}",))

    # asked again, not cached: a change shows at once
    dns_server.set_records(domain, "MX", ["10 other.hoster.test."], zone=domain)
    assert statuses(mail(domain=domain), servers=servers)["mx"][0] == "wrong"
    assert check_ownership(servers) == ("missing", ())


def test_servers_that_do_not_answer_leave_the_records_unchecked(dns_server, settings):
    settings.DNS_TIMEOUT = 0.3
    dns_server.stop()

    checks = check_mail_records(records=mail().records, rules=rules(mail()))

    assert {check.status for check in checks} == {"unchecked"}
    assert "did not answer within 0.3 s" in checks[0].error or "could not answer" in checks[0].error


def test_a_wrong_resolver_setting_is_a_permanent_error(settings):
    settings.DNS_CHECK_RESOLVERS = ["127.0.0.1:domain"]
    with pytest.raises(DnsCheckError, match="DNS_CHECK_RESOLVERS is wrong") as caught:
        check_mail_records(records=mail().records, rules=rules(mail()))
    assert caught.value.transient is False


# The comparison alone


@pytest.mark.parametrize(
    ("purpose", "found", "exclusive", "status"),
    [
        ("mx", [], True, "missing"),
        ("mx", [f"20 {SERVER}"], True, "ok"),  # hosts count, not priorities
        ("mx", [f"10 {SERVER}", "20 old.example.test"], True, "wrong"),
        ("mx", [f"10 {SERVER}", "20 old.example.test"], False, "ok"),
        ("mx", ["10 old.example.test"], False, "wrong"),
        ("autodiscover", [f"0 0 443 {SERVER}", "0 0 443 old.test"], True, "wrong"),
        ("autodiscover", [f"0 0 443 {SERVER}", "0 0 443 old.test"], False, "ok"),
        ("autodiscover", ["0 0 443 old.test"], False, "wrong"),
        ("spf", ["google-site-verification=x"], True, "missing"),
        ("spf", [f"v=spf1 ip4:{IPV4}/24 ip6:{IPV6}/64 ~all", "other"], True, "ok"),
        ("spf", [f"v=spf1 ip4:{IPV4} ~all"], True, "wrong"),
        ("dkim", [f"v=DKIM1; k=rsa; p={KEY}"], True, "ok"),
        ("dkim", ["v=DKIM1; k=rsa; p="], True, "wrong"),  # a revoked key
        ("dmarc", ["v=DMARC1; p=quarantine"], True, "ok"),
        ("dmarc", ["something else"], True, "missing"),
    ],
)
def test_compare_mail_record(purpose, found, exclusive, status):
    expected = mail()
    (record,) = expected.of(purpose)
    check = compare_mail_record(
        record=record, found=Found(values=tuple(found)), rules=rules(expected, exclusive=exclusive)
    )
    assert check.status == status
    assert CheckStatus(check.status) == status
