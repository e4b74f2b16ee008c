from django.core.checks import run_checks


def zone_errors() -> list[str]:
    return [f"{e.id}: {e.msg}" for e in run_checks(tags=["dns"])]


def test_the_defaults_pass(settings):
    settings.DNS_UPDATE_SERVER = ""
    settings.DNS_CHECK_RESOLVERS = []
    assert zone_errors() == []


def test_wrong_dns_settings_are_reported(settings):
    settings.DNS_UPDATE_SERVER = "127.0.0.1:53"
    settings.DNS_TSIG_KEY_NAME = "portal"
    settings.DNS_TSIG_SECRET = "not base64"
    settings.DNS_CHECK_RESOLVERS = ["127.0.0.1:53", "[::1"]
    assert zone_errors() == [
        "zones.E001: The portal's setting DNS_TSIG_KEY_NAME, DNS_TSIG_SECRET or "
        "DNS_TSIG_ALGORITHM is wrong: The secret of the TSIG key portal is not valid base64.",
        "zones.E002: DNS_CHECK_RESOLVERS: “[::1” is not a server address; write [IPv6]:port.",
    ]


def test_wrong_mail_domain_settings_are_reported(settings):
    settings.DNS_UPDATE_SERVER = ""
    settings.DNS_CHECK_RESOLVERS = []
    settings.MAIL_EXCHANGERS = "mx1.filter.example.net:10,mx2.filter.example.net"
    settings.DOMAIN_CHECK_TARGET = "check..hoster.example"
    settings.PLATFORM_MAX_DOMAINS = 0
    assert zone_errors() == [
        "zones.E003: MAIL_EXCHANGERS: “mx2.filter.example.net” has no priority; write "
        "host:priority, e.g. mx1.example.net:10.",
        "zones.E004: DOMAIN_CHECK_TARGET “check..hoster.example” is not a host name: "
        "A domain name cannot contain empty labels (“..”).",
        "zones.E005: PLATFORM_MAX_DOMAINS must be at least 1.",
    ]


def test_mail_exchangers_of_a_filtering_layer_pass(settings):
    settings.DNS_UPDATE_SERVER = ""
    settings.DNS_CHECK_RESOLVERS = []
    settings.MAIL_EXCHANGERS = "mx1.filter.example.net:10, mx2.filter.example.net:20"
    settings.DOMAIN_CHECK_TARGET = "domain-check.hoster.example"
    assert zone_errors() == []
