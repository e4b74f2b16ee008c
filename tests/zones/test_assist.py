"""DNS Assist of a mail domain, asserted on what a real BIND9 serves (and on the embedded store):
it writes MX, SRV, a merged SPF and DKIM, touches nothing else, and its undo restores the zone."""

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from certificates.encryption import decrypt, encrypt
from zones.assist import (
    MailAssistPlan,
    mail_assist_plan,
    mail_assist_undo,
    mail_assist_write,
    served_mail,
)
from zones.dkim import dkim_keys_generate
from zones.errors import DnsConflictError, DnsWriteError
from zones.mail import mail_records, parse_mail_exchangers
from zones.models import EmbeddedRecord
from zones.writers import EmbeddedWriter, get_writer

ZONE = "example.test"
SERVER = "px-1.hoster.test"
IPV4 = "203.0.113.10"
IPV6 = "2001:db8:100::10"
OURS = f"ip4:{IPV4} ip6:{IPV6}"
OLD_MX = "10 mx.example.test."
SITE_VERIFICATION = "google-site-verification=abc123"


@pytest.fixture(scope="module")
def dkim_keys():
    # Fernet with the settings' default key: the same machinery the certificates use.
    return dkim_keys_generate(platform="pex-abcd1234", encrypt=encrypt)


@pytest.fixture
def primary(bind, settings):
    """BIND9 serving example.test with its baseline MX and SPF, and a TXT record the portal
    does not own at the apex."""
    bind.configure(settings)
    bind.set_records(ZONE, "TXT", ['"v=spf1 mx -all"', f'"{SITE_VERIFICATION}"'], ttl=3600)
    return bind


def expected(writer, dkim_keys, *, domain=ZONE, exchangers=""):
    return mail_records(
        domain=domain,
        zone=ZONE,
        server_name=SERVER,
        ipv4=IPV4,
        ipv6=IPV6,
        exchangers=parse_mail_exchangers(exchangers, server_name=SERVER),
        dkim={key.selector: key.public_key for key in dkim_keys},
        served=served_mail(writer=writer, zone=ZONE, domain=domain),
        ttl=3600,
    )


def stored(plan: MailAssistPlan) -> MailAssistPlan:
    """The plan as the caller keeps it: through JSON."""
    return MailAssistPlan.from_dict(json.loads(json.dumps(plan.as_dict())))


def test_dns_assist_writes_the_records_and_its_undo_restores_the_zone(primary, dkim_keys):
    writer = get_writer()
    before = primary.records()

    plan = stored(
        mail_assist_plan(writer=writer, mail=expected(writer, dkim_keys), authoritative=True)
    )
    assert plan.removed_records() == ((ZONE, "MX", "10 mx.example.test"),)
    mail_assist_write(writer=writer, plan=plan)

    assert primary.served(ZONE, "MX") == {f"10 {SERVER}."}
    assert primary.served(f"_autodiscover._tcp.{ZONE}", "SRV") == {f"0 0 443 {SERVER}."}
    assert primary.served(ZONE, "TXT") == {f"v=spf1 mx {OURS} -all", SITE_VERIFICATION}
    for key in dkim_keys:
        name = f"{key.selector}._domainkey.{ZONE}"
        assert primary.served(name, "TXT") == {f"v=DKIM1; k=rsa; p={key.public_key}"}
    assert primary.served(f"_dmarc.{ZONE}", "TXT") == set()  # suggested, not written
    assert before - primary.records() == {("@", "MX", "10 mx"), ("@", "TXT", '"v=spf1 mx -all"')}

    serial, updates = primary.serial(), primary.updates_received()
    mail_assist_write(writer=writer, plan=plan)
    assert (primary.serial(), primary.updates_received()) == (serial, updates)

    mail_assist_undo(writer=writer, plan=plan)
    assert primary.records() == before
    serial = primary.serial()
    mail_assist_undo(writer=writer, plan=plan)
    assert primary.serial() == serial


def test_the_served_dkim_key_verifies_what_the_stored_private_key_signs(primary, dkim_keys):
    writer = get_writer()
    plan = mail_assist_plan(writer=writer, mail=expected(writer, dkim_keys), authoritative=True)
    mail_assist_write(writer=writer, plan=plan)
    active = dkim_keys[0]
    assert active.selector == "pex-abcd1234-1"

    (served,) = primary.served(f"{active.selector}._domainkey.{ZONE}", "TXT")
    public_key = serialization.load_der_public_key(base64.b64decode(served.split("p=")[1]))
    private_key = serialization.load_pem_private_key(
        decrypt(active.private_key_encrypted), password=None
    )
    signature = private_key.sign(b"From: a@example.test", padding.PKCS1v15(), hashes.SHA256())
    public_key.verify(signature, b"From: a@example.test", padding.PKCS1v15(), hashes.SHA256())
    assert public_key.key_size == 2048
    assert b"PRIVATE KEY" not in active.private_key_encrypted.encode()


def test_non_authoritative_mode_adds_the_mx_beside_the_other_server(primary, dkim_keys):
    writer = get_writer()
    before = primary.records()
    plan = mail_assist_plan(writer=writer, mail=expected(writer, dkim_keys), authoritative=False)
    assert plan.removed_records() == ()

    mail_assist_write(writer=writer, plan=plan)
    assert primary.served(ZONE, "MX") == {OLD_MX, f"10 {SERVER}."}

    mail_assist_undo(writer=writer, plan=plan)
    assert primary.records() == before


def test_mx_changed_after_the_confirmation_is_not_overwritten(primary, dkim_keys):
    writer = get_writer()
    plan = mail_assist_plan(writer=writer, mail=expected(writer, dkim_keys), authoritative=True)
    primary.set_records(ZONE, "MX", ["5 mx.other.test."], ttl=3600)

    with pytest.raises(DnsConflictError, match="changed since they were read") as caught:
        mail_assist_write(writer=writer, plan=plan)

    assert caught.value.transient is False
    assert primary.served(ZONE, "MX") == {"5 mx.other.test."}


def test_undo_keeps_what_the_customer_changed_since(primary, dkim_keys):
    writer = get_writer()
    plan = mail_assist_plan(writer=writer, mail=expected(writer, dkim_keys), authoritative=True)
    mail_assist_write(writer=writer, plan=plan)
    primary.set_records(
        ZONE, "TXT", [f'"v=spf1 mx {OURS} include:other.test -all"', f'"{SITE_VERIFICATION}"']
    )
    primary.set_records(ZONE, "MX", [f"10 {SERVER}.", "20 backup.other.test."])

    mail_assist_undo(writer=writer, plan=plan)

    assert primary.served(ZONE, "TXT") == {"v=spf1 mx include:other.test -all", SITE_VERIFICATION}
    # The MX set is no longer what DNS Assist left: ours goes, the old one is not put back.
    assert primary.served(ZONE, "MX") == {"20 backup.other.test."}


def test_an_spf_record_dns_assist_created_is_deleted_by_the_undo(primary, dkim_keys):
    primary.set_records(ZONE, "TXT", [f'"{SITE_VERIFICATION}"'])
    writer = get_writer()
    before = primary.records()
    plan = mail_assist_plan(writer=writer, mail=expected(writer, dkim_keys), authoritative=True)
    assert plan.spf_created is True

    mail_assist_write(writer=writer, plan=plan)
    assert primary.served(ZONE, "TXT") == {f"v=spf1 {OURS} ~all", SITE_VERIFICATION}

    mail_assist_undo(writer=writer, plan=plan)
    assert primary.records() == before


def test_undo_of_a_write_cut_short_leaves_a_later_spf_of_the_customer(primary, dkim_keys):
    """The plan was stored, the write never ran; the customer then made an SPF record."""
    primary.set_records(ZONE, "TXT", [f'"{SITE_VERIFICATION}"'])
    writer = get_writer()
    plan = mail_assist_plan(writer=writer, mail=expected(writer, dkim_keys), authoritative=True)
    primary.set_records(ZONE, "TXT", ['"v=spf1 -all"', f'"{SITE_VERIFICATION}"'])
    before = primary.records()

    mail_assist_undo(writer=writer, plan=plan)

    assert primary.records() == before


def test_a_domain_in_a_sub_zone_with_several_exchangers(primary, dkim_keys):
    """The customer's zone is example.test; the primary serves sub.example.test apart."""
    domain = primary.sub_zone
    writer = get_writer()
    before = primary.records(domain)
    mail = expected(
        writer, dkim_keys, domain=domain, exchangers="mx1.filter.test:10,mx2.filter.test:20"
    )
    plan = mail_assist_plan(writer=writer, mail=mail, authoritative=True)

    mail_assist_write(writer=writer, plan=plan)

    assert primary.served(domain, "MX") == {"10 mx1.filter.test.", "20 mx2.filter.test."}
    assert primary.served(domain, "TXT") == {f"v=spf1 {OURS} ~all"}
    assert ("_autodiscover._tcp", "SRV", f"0 0 443 {SERVER}.") in primary.records(domain)
    mail_assist_undo(writer=writer, plan=plan)
    assert primary.records(domain) == before


def test_two_spf_records_are_refused_before_anything_is_written(primary, dkim_keys):
    primary.set_records(ZONE, "TXT", ['"v=spf1 mx -all"', '"v=spf1 a -all"'])
    writer = get_writer()
    before = primary.records()

    with pytest.raises(DnsWriteError, match="has 2 SPF records") as caught:
        mail_assist_plan(writer=writer, mail=expected(writer, dkim_keys), authoritative=True)

    assert caught.value.transient is False
    assert primary.records() == before


@pytest.mark.django_db
def test_dns_assist_in_the_embedded_store(dkim_keys):
    writer = EmbeddedWriter()
    writer.change_records(zone=ZONE, name=ZONE, rtype="MX", ttl=3600, add=["10 mx.example.test"])
    writer.change_records(
        zone=ZONE, name=ZONE, rtype="TXT", ttl=3600, add=["v=spf1 mx -all", SITE_VERIFICATION]
    )

    def contents():
        return {(r.name, r.rtype, r.value) for r in EmbeddedRecord.objects.all()}

    before = contents()
    plan = mail_assist_plan(writer=writer, mail=expected(writer, dkim_keys), authoritative=True)
    mail_assist_write(writer=writer, plan=plan)

    assert writer.read_records(zone=ZONE, name=ZONE, rtype="MX") == (f"10 {SERVER}",)
    assert writer.read_records(zone=ZONE, name=ZONE, rtype="TXT") == (
        SITE_VERIFICATION,
        f"v=spf1 mx {OURS} -all",
    )
    assert writer.read_records(zone=ZONE, name=f"_autodiscover._tcp.{ZONE}", rtype="SRV") == (
        f"0 0 443 {SERVER}",
    )
    mail_assist_write(writer=writer, plan=plan)
    mail_assist_undo(writer=writer, plan=plan)
    assert contents() == before


def test_the_primary_down_during_the_write_then_back(primary, dkim_keys, settings):
    """A transient error, nothing lost: the stored plan is written once the primary is back,
    and its undo still restores the zone."""
    writer = get_writer()
    before = primary.records()
    plan = stored(
        mail_assist_plan(writer=writer, mail=expected(writer, dkim_keys), authoritative=True)
    )
    settings.DNS_TIMEOUT = 0.5
    primary.stop()

    with pytest.raises(DnsWriteError, match="refused the connection") as caught:
        mail_assist_write(writer=get_writer(), plan=plan)

    assert caught.value.transient is True
    primary.start()
    mail_assist_write(writer=get_writer(), plan=plan)
    assert primary.served(ZONE, "MX") == {f"10 {SERVER}."}
    mail_assist_undo(writer=get_writer(), plan=plan)
    assert primary.records() == before
