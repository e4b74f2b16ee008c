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
