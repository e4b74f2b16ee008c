"""``manage.py export_zone``: the embedded store as a zone file that BIND9 accepts."""

import subprocess
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from zones.writers import EmbeddedWriter

pytestmark = pytest.mark.django_db


def export(*args: str) -> str:
    out = StringIO()
    call_command("export_zone", *args, stdout=out)
    return out.getvalue()


def named_checkzone(zone: str, text: str, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / f"{zone}.zone"
    path.write_text(text)
    return subprocess.run(
        ["named-checkzone", zone, str(path)], capture_output=True, text=True, check=False
    )


@pytest.fixture
def stored_zone():
    writer = EmbeddedWriter()
    writer.set_address_records(
        zone="example.test",
        name="mail.example.test",
        ipv4="203.0.113.10",
        ipv6="2001:db8:100::10",
        ttl=3600,
    )
    writer.set_address_records(
        zone="example.test", name="example.test", ipv4="203.0.113.11", ipv6="2001:db8::11", ttl=600
    )
    writer.set_txt(
        zone="example.test", name="_acme-challenge.mail.example.test", value='a "b" c', ttl=60
    )
    writer.set_txt(
        zone="example.test", name="_acme-challenge.mail.example.test", value="x" * 300, ttl=60
    )
    return "example.test"


def test_the_export_passes_named_checkzone(stored_zone, tmp_path, settings):
    settings.DNS_RECORD_TTL = 1800
    text = export(stored_zone)

    checked = named_checkzone(stored_zone, text, tmp_path)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = text.splitlines()
    assert "$ORIGIN example.test." in lines
    assert "$TTL 1800" in lines
    assert "@ IN NS localhost." in lines
    assert "mail 3600 IN A 203.0.113.10" in lines
    assert "mail 3600 IN AAAA 2001:db8:100::10" in lines
    assert "@ 600 IN A 203.0.113.11" in lines
    assert '_acme-challenge.mail 60 IN TXT "a \\"b\\" c"' in lines


def test_the_serial_and_name_servers_are_the_zones(stored_zone, tmp_path):
    from zones.models import EmbeddedZone

    serial = EmbeddedZone.objects.get(name=stored_zone).serial

    text = export(stored_zone, "--nameserver", "ns1.hoster.example", "--nameserver", "ns2.hoster")

    checked = named_checkzone(stored_zone, text, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"loaded serial {serial}" in checked.stdout
    assert f"@ IN SOA ns1.hoster.example. hostmaster {serial} " in text
    assert "@ IN NS ns2.hoster." in text


def test_an_internationalised_domain_is_found_by_its_a_label():
    EmbeddedWriter().set_txt(zone="xn--caf-dma.test", name="xn--caf-dma.test", value="v", ttl=60)
    assert "$ORIGIN xn--caf-dma.test." in export("café.test")


def test_an_unknown_zone_is_a_clear_error():
    with pytest.raises(CommandError, match=r"has no zone unknown\.test"):
        export("unknown.test")


def test_a_bad_domain_is_a_clear_error():
    with pytest.raises(CommandError, match=r"“bad\.\.name” is not a domain name"):
        export("bad..name")


def test_a_bad_name_server_is_a_clear_error(stored_zone):
    with pytest.raises(CommandError, match="is not a name server's name"):
        export(stored_zone, "--nameserver", "a..b")


def test_mail_records_export_with_absolute_targets(stored_zone, tmp_path):
    writer = EmbeddedWriter()
    for name, rtype, value in [
        ("example.test", "MX", "10 px-1.hoster.test"),
        ("_autodiscover._tcp.example.test", "SRV", "0 0 443 px-1.hoster.test"),
        ("k3x9-check.example.test", "CNAME", "domain-check.hoster.test"),
    ]:
        writer.change_records(zone=stored_zone, name=name, rtype=rtype, ttl=3600, add=[value])

    text = export(stored_zone)

    checked = named_checkzone(stored_zone, text, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = text.splitlines()
    assert "@ 3600 IN MX 10 px-1.hoster.test." in lines
    assert "_autodiscover._tcp 3600 IN SRV 0 0 443 px-1.hoster.test." in lines
    assert "k3x9-check 3600 IN CNAME domain-check.hoster.test." in lines
