"""The guide's steps with CA_BACKEND=acme, in the test process: pebble (tests/pebble.py) issues
the certificate after checking the DNS-01 record on the shared BIND9 (tests/bind.py), which
is also the zone DNS Assist writes into and the resolver the portal checks records with."""

from datetime import timedelta

import pytest
from cryptography import x509
from django.test import Client
from django.utils import timezone

from notifications.models import Email
from provisioning.models import Job, Platform
from provisioning.services import platform_order
from tests.factories import AccountFactory
from tests.helpers import work_off
from tests.provisioning.test_flow import configure, finish_finalisation

pytestmark = pytest.mark.django_db


@pytest.fixture
def dns(bind, settings):
    bind.configure(settings)
    return bind


@pytest.fixture
def acme(pebble, dns):
    """pebble with the portal's CA_BACKEND=acme, checking records on the same BIND9."""
    return pebble


def configured_platform(*, dns_assist: bool, domain: str) -> tuple[Platform, Client]:
    """Ordered, delivered and set up by its customer (the owed work not run yet)."""
    account = AccountFactory(zones=[domain] if dns_assist else [], language="en")
    platform = platform_order(account=account, actor="test")
    work_off()
    client = configure(platform, dns_assist=dns_assist, domain=domain)
    return platform, client


def assert_issued_by_pebble(platform: Platform, pebble) -> x509.Certificate:
    order = platform.certificate
    assert order.backend == "acme"
    assert order.status == "issued"
    leaf = x509.load_pem_x509_certificate(order.certificate_pem.encode())
    intermediates = x509.load_pem_x509_certificates(order.chain_pem.encode())
    leaf.verify_directly_issued_by(intermediates[0])
    intermediates[-1].verify_directly_issued_by(
        x509.load_pem_x509_certificate(pebble.root_pem().encode())
    )
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [platform.server_name]
    assert "Pebble Intermediate CA" in order.issuer
    assert order.serial == format(leaf.serial_number, "X")
    return leaf


def test_dns_assist_platform_gets_its_certificate_from_the_acme_ca(acme, dns, mailbox):
    platform, client = configured_platform(dns_assist=True, domain=dns.zone)
    work_off()

    platform.refresh_from_db()
    server_name = f"exchange.{dns.zone}"
    assert platform.server_name == server_name
    assert dns.served(server_name, "A") == {platform.ipv4}
    assert dns.served(server_name, "AAAA") == {platform.ipv6}
    assert platform.dns_state == "verified"
    assert platform.state == "finalising"
    assert platform.due_at > timezone.now()
    assert_issued_by_pebble(platform, acme)
    assert dns.served(f"_acme-challenge.{server_name}", "TXT") == set()  # removed again
    [job] = Job.objects.filter(platform=platform, kind="acme_dns")
    assert (job.status, job.attempts, job.last_error) == ("done", 1, "")
    assert not Job.objects.filter(platform=platform, kind="acme_manual").exists()
    status = client.get(f"/platforms/{platform.service}/").content.decode()
    assert "_acme-challenge" not in status  # nothing for the customer to add

    finish_finalisation()
    platform.refresh_from_db()
    assert platform.state == "ready"
    kinds = list(Email.objects.order_by("created_at").values_list("kind", flat=True))
    assert kinds == ["delivery", "ready"]
    messages = mailbox.wait_for(2)
    assert len(messages) == 2
    assert not mailbox.with_subject("Domain Control Validation")
    [delivery] = mailbox.with_subject("is being delivered")
    [ready] = mailbox.with_subject("is ready!")
    assert platform.service in delivery["Subject"] and platform.service in ready["Subject"]
    home = client.get("/").content.decode()
    assert platform.service in home and f"https://{server_name}/owa" in home


def test_manual_path_shows_the_record_and_completes_once_it_is_served(acme, dns, mailbox):
    platform, client = configured_platform(dns_assist=False, domain=dns.zone)
    work_off()

    platform.refresh_from_db()
    assert platform.state == "certificate_pending"
    order = platform.certificate
    record_name = f"_acme-challenge.{platform.server_name}"
    assert (order.backend, order.status, order.acme_txt_name) == ("acme", "pending", record_name)
    assert len(order.acme_txt_value) == 43  # base64url of a SHA-256 digest
    status = client.get(f"/platforms/{platform.service}/").content.decode()
    assert record_name in status and order.acme_txt_value in status

    # Not served yet: the job looks again later, without counting a failure.
    [job] = Job.objects.filter(platform=platform, kind="acme_manual")
    assert (job.status, job.attempts, job.last_error) == ("pending", 0, "")
    assert job.due_at > timezone.now()
    Job.objects.filter(pk=job.pk).update(due_at=timezone.now())
    work_off()
    job.refresh_from_db()
    platform.refresh_from_db()
    assert (job.status, job.attempts) == ("pending", 0)
    assert platform.state == "certificate_pending"
    assert platform.certificate.acme_txt_value == order.acme_txt_value  # the same record

    # The customer adds the record; the next look completes the order.
    dns.set_records(record_name, "TXT", [f'"{order.acme_txt_value}"'], ttl=60)
    assert dns.served(record_name, "TXT") == {order.acme_txt_value}
    Job.objects.filter(pk=job.pk).update(due_at=timezone.now())
    work_off()

    job.refresh_from_db()
    platform.refresh_from_db()
    assert (job.status, job.last_error) == ("done", "")
    assert platform.state == "finalising"
    assert_issued_by_pebble(platform, acme)
    status = client.get(f"/platforms/{platform.service}/").content.decode()
    assert order.acme_txt_value not in status  # nothing more to add
    assert platform.certificate.serial in status
    assert not Email.objects.filter(kind="dcv").exists()
    assert not mailbox.with_subject("Domain Control Validation")


def test_acme_ca_down_is_retried_with_backoff_then_succeeds(acme, dns, mailbox, settings):
    platform, _client = configured_platform(dns_assist=True, domain=dns.zone)
    acme.stop()
    before = timezone.now()
    work_off()

    platform.refresh_from_db()
    assert platform.state == "certificate_pending"
    assert platform.dns_state == "verified"  # DNS goes on without the CA
    [job] = Job.objects.filter(platform=platform, kind="acme_dns")
    assert (job.status, job.attempts) == ("pending", 1)
    assert job.last_error.startswith(
        f"Could not reach the certificate authority at {acme.directory_url}"
    )
    backoff = timedelta(seconds=settings.RETRY_BACKOFF_BASE * 0.8)
    assert job.due_at >= before + backoff  # not before the backoff
    assert platform.certificate.status == "pending"
    assert platform.certificate.last_error == job.last_error

    acme.start()
    Job.objects.filter(pk=job.pk).update(due_at=timezone.now())
    work_off()

    job.refresh_from_db()
    platform.refresh_from_db()
    assert (job.status, job.attempts, job.last_error) == ("done", 2, "")
    assert platform.state == "finalising"
    assert_issued_by_pebble(platform, acme)
    assert dns.served(f"_acme-challenge.{platform.server_name}", "TXT") == set()
    assert platform.certificate.last_error == ""


@pytest.mark.parametrize("dns_assist", [True, False], ids=["dns_assist", "manual"])
def test_a_stage_cut_short_after_issuance_finishes_on_its_retry(
    acme, dns, mailbox, monkeypatch, dns_assist
):
    """The worker stored the certificate but failed before the platform moved on (a
    database error, a lost worker): the retry moves it on, without a second certificate."""
    from provisioning.services import certificate

    platform, _client = configured_platform(dns_assist=dns_assist, domain=dns.zone)
    kind = "acme_dns" if dns_assist else "acme_manual"
    if not dns_assist:
        work_off()
        order = Platform.objects.get(pk=platform.pk).certificate
        dns.set_records(order.acme_txt_name, "TXT", [f'"{order.acme_txt_value}"'], ttl=60)
        Job.objects.filter(platform=platform, kind=kind).update(due_at=timezone.now())
    moved_on = certificate.acme_issued

    def cut_short(platform_id: int, order_id: int) -> None:
        monkeypatch.setattr(certificate, "acme_issued", moved_on)
        raise ConnectionError("the database went away")

    monkeypatch.setattr(certificate, "acme_issued", cut_short)
    work_off()

    platform.refresh_from_db()
    [job] = Job.objects.filter(platform=platform, kind=kind)
    assert (job.status, job.attempts) == ("pending", 1)
    assert "the database went away" in job.last_error
    assert platform.state == "certificate_pending"
    assert platform.certificate.status == "issued"
    serial = platform.certificate.serial

    Job.objects.filter(pk=job.pk).update(due_at=timezone.now())
    work_off()

    job.refresh_from_db()
    platform.refresh_from_db()
    assert (job.status, job.last_error) == ("done", "")
    assert platform.state == "finalising"
    assert platform.certificate.serial == serial  # the certificate issued before
    assert_issued_by_pebble(platform, acme)
