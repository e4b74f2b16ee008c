"""The records a mail domain needs: pure computation, SPF merging and the zone-file snippet."""

import dns.zone
import pytest
from django.utils import translation

from zones.mail import (
    MailExchanger,
    ServedMail,
    dkim_public_key_of,
    mail_records,
    ownership_record,
    ownership_token_new,
    parse_mail_exchangers,
    render_zone_snippet,
    spf_includes,
    spf_is_skeleton,
    spf_merge,
    spf_unmerge,
)
from zones.records import InvalidValue

SERVER = "mail.example.net"
IPV4 = "203.0.113.10"
IPV6 = "2001:db8:100::10"
OURS = ("ip4:203.0.113.10", "ip6:2001:db8:100::10")
P1 = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "A" * 350


def records(**changes):
    values = {
        "domain": "shop.example.com",
        "zone": "example.com",
        "server_name": SERVER,
        "ipv4": IPV4,
        "ipv6": IPV6,
        "exchangers": (MailExchanger(host=SERVER, priority=10),),
        "dkim": {"pex-abc-1": P1, "pex-abc-2": "QUJD"},
        "served": ServedMail(),
        "ttl": 3600,
    } | changes
    return mail_records(**values)


# MAIL_EXCHANGERS


def test_mail_exchangers_default_to_the_server_name():
    assert parse_mail_exchangers("", server_name="Mail.Example.net.") == (
        MailExchanger(host="mail.example.net", priority=10),
    )


def test_mail_exchangers_from_the_setting():
    assert parse_mail_exchangers(" mx1.filter.net:10, MX2.filter.net:20 ", server_name=SERVER) == (
        MailExchanger(host="mx1.filter.net", priority=10),
        MailExchanger(host="mx2.filter.net", priority=20),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mx1.filter.net", "“mx1.filter.net” has no priority; write host:priority"),
        ("mx1.filter.net:ten", "has no priority"),
        ("mx1.filter.net:70000", "priority of “mx1.filter.net:70000” is above 65535"),
        ("mx1.filter.net:10,,mx2.filter.net:20", "has an empty entry"),
        ("mx 1.filter.net:10", "is not a host name"),
        ("mx1.filter.net:10,MX1.filter.net:20", "names mx1.filter.net twice"),
    ],
)
def test_bad_mail_exchangers_are_explained(text, message):
    with pytest.raises(InvalidValue, match=message):
        parse_mail_exchangers(text, server_name=SERVER)


# The expected records


def test_every_record_of_a_new_domain():
    mail = records()
    table = [
        (r.purpose, r.name, r.relative, r.rtype, r.value, r.ttl, r.required) for r in mail.records
    ]
    assert table == [
        ("mx", "shop.example.com", "shop", "MX", f"10 {SERVER}", 3600, True),
        (
            "autodiscover",
            "_autodiscover._tcp.shop.example.com",
            "_autodiscover._tcp.shop",
            "SRV",
            f"0 0 443 {SERVER}",
            3600,
            True,
        ),
        ("spf", "shop.example.com", "shop", "TXT", f"v=spf1 {' '.join(OURS)} ~all", 3600, True),
        (
            "dkim",
            "pex-abc-1._domainkey.shop.example.com",
            "pex-abc-1._domainkey.shop",
            "TXT",
            f"v=DKIM1; k=rsa; p={P1}",
            3600,
            True,
        ),
        (
            "dkim",
            "pex-abc-2._domainkey.shop.example.com",
            "pex-abc-2._domainkey.shop",
            "TXT",
            "v=DKIM1; k=rsa; p=QUJD",
            3600,
            True,
        ),
        ("dmarc", "_dmarc.shop.example.com", "_dmarc.shop", "TXT", "v=DMARC1; p=none", 3600, False),
    ]
    assert mail.spf_mechanisms == OURS


def test_the_apex_is_at_and_several_exchangers_give_several_mx():
    mail = records(
        domain="example.com",
        exchangers=parse_mail_exchangers("mx1.filter.net:10,mx2.filter.net:20", server_name=SERVER),
    )
    assert [(r.relative, r.value) for r in mail.of("mx")] == [
        ("@", "10 mx1.filter.net"),
        ("@", "20 mx2.filter.net"),
    ]


def test_an_existing_spf_is_merged_and_an_existing_dmarc_is_not_suggested_again():
    mail = records(served=ServedMail(spf="v=spf1 include:_spf.google.com -all", has_dmarc=True))
    assert [r.value for r in mail.of("spf")] == [
        f"v=spf1 include:_spf.google.com {' '.join(OURS)} -all"
    ]
    assert mail.of("dmarc") == ()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"domain": "shop.other.com"}, "not inside the zone example.com"),
        ({"ipv4": "203.0.113.300"}, "Not a platform address"),
        ({"server_name": "mail..example.net"}, "is not a host name"),
        ({"dkim": {"bad_selector": "QUJD"}}, "is not a DKIM selector"),
    ],
)
def test_bad_inputs_are_refused(changes, message):
    with pytest.raises(InvalidValue, match=message):
        records(**changes)


def test_ownership_record():
    record = ownership_record(
        domain="shop.example.com",
        zone="example.com",
        token="k3x9",
        target="Check.Hoster.net",
        ttl=300,
    )
    assert (record.name, record.relative, record.rtype, record.value) == (
        "k3x9-check.shop.example.com",
        "k3x9-check.shop",
        "CNAME",
        "check.hoster.net",
    )
    with pytest.raises(InvalidValue, match="not an ownership token"):
        ownership_record(
            domain="example.com", zone="example.com", token="a.b", target="x.net", ttl=1
        )


def test_ownership_tokens_are_random_labels():
    first, second = ownership_token_new(), ownership_token_new()
    assert first != second
    assert len(first) == 26
    record = ownership_record(
        domain="example.com", zone="example.com", token=first, target="x.net", ttl=1
    )
    assert record.name == f"{first}-check.example.com"


def test_dkim_public_key_of_reads_the_p_tag():
    assert dkim_public_key_of("v=DKIM1; k=rsa; p=QU JD\t") == "QUJD"
    assert dkim_public_key_of("v=DKIM1; k=rsa") is None


# SPF


@pytest.mark.parametrize(
    ("record", "merged", "added"),
    [
        ("v=spf1 mx -all", f"v=spf1 mx {' '.join(OURS)} -all", OURS),
        ("v=spf1 -all", f"v=spf1 {' '.join(OURS)} -all", OURS),
        # no "all": after the last mechanism, before the modifiers
        (
            "v=spf1 a redirect=_spf.example.com",
            f"v=spf1 a {' '.join(OURS)} redirect=_spf.example.com",
            OURS,
        ),
        ("v=spf1", f"v=spf1 {' '.join(OURS)}", OURS),
        # already covered by a network: not added twice
        (
            "v=spf1 +ip4:203.0.113.0/24 ?all",
            "v=spf1 +ip4:203.0.113.0/24 ip6:2001:db8:100::10 ?all",
            OURS[1:],
        ),
        (f"v=spf1 {' '.join(OURS)} ~all", f"v=spf1 {' '.join(OURS)} ~all", ()),
        # a mechanism after "all" is never evaluated
        (
            "v=spf1 ~all ip6:2001:db8:100::10",
            f"v=spf1 {' '.join(OURS)} ~all ip6:2001:db8:100::10",
            OURS,
        ),
    ],
)
def test_spf_merge_inserts_our_mechanisms_once(record, merged, added):
    assert spf_merge(record, mechanisms=OURS) == (merged, added)
    assert spf_includes(merged, mechanisms=OURS)
    assert spf_unmerge(merged, added=added) == record


def test_spf_unmerge_removes_only_our_terms_and_keeps_later_changes():
    merged, added = spf_merge("v=spf1 mx -all", mechanisms=OURS)
    edited = merged.replace("-all", "include:other.net -all")
    assert spf_unmerge(edited, added=added) == "v=spf1 mx include:other.net -all"


def test_spf_includes():
    assert spf_includes("v=spf1 ip4:203.0.113.10 ip6:2001:db8:100::/64 -all", mechanisms=OURS)
    assert not spf_includes("v=spf1 ip4:203.0.113.10 -all", mechanisms=OURS)
    assert not spf_includes("v=spf1 -all ip4:203.0.113.10 ip6:2001:db8:100::10", mechanisms=OURS)
    # the first match decides: an earlier fail wins over our pass
    assert not spf_includes(f"v=spf1 -ip4:203.0.113.0/24 {' '.join(OURS)} -all", mechanisms=OURS)


def test_spf_skeleton():
    assert spf_is_skeleton("v=spf1 ~all")
    assert spf_is_skeleton("v=spf1")
    assert not spf_is_skeleton("v=spf1 mx ~all")


def test_a_record_that_is_not_spf_cannot_be_merged():
    with pytest.raises(InvalidValue, match="not an SPF record"):
        spf_merge("google-site-verification=abc", mechanisms=OURS)


# The zone-file snippet


def test_the_zone_snippet_loads_as_a_zone_file():
    mail = records(domain="example.com")
    owner = ownership_record(
        domain="example.com", zone="example.com", token="k3x9", target="check.hoster.net", ttl=300
    )

    snippet = render_zone_snippet(mail, extra=[owner])

    zone_text = "@ 3600 IN SOA ns.example.com. hostmaster.example.com. 1 3600 900 86400 300\n"
    loaded = dns.zone.from_text(snippet + zone_text, check_origin=False)
    served = {
        (
            name.to_text(),
            dns.rdatatype.to_text(rdataset.rdtype),
            rdata.to_text(origin=loaded.origin, relativize=False),
        )
        for name, rdataset in loaded.iterate_rdatasets()
        for rdata in rdataset
        if rdataset.rdtype != dns.rdatatype.SOA
    }
    assert ("@", "MX", f"10 {SERVER}.") in served
    assert ("_autodiscover._tcp", "SRV", f"0 0 443 {SERVER}.") in served
    assert ("k3x9-check", "CNAME", "check.hoster.net.") in served
    assert ("pex-abc-1._domainkey", "TXT", f'"v=DKIM1; k=rsa; p={P1[:237]}" "{P1[237:]}"') in served
    assert len(served) == 7
    assert "; SPF: replaces your SPF record" in snippet


def test_the_zone_snippet_speaks_the_customers_language():
    with translation.override("fr"):
        snippet = render_zone_snippet(records())
    assert "; Enregistrements de messagerie pour shop.example.com" in snippet
    assert "; SPF : remplace votre enregistrement SPF si vous en avez un" in snippet
