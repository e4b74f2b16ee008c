"""Suspension and termination as the customer and the servers see them: the pages of a
suspended platform, BIND after a termination, pebble's word on the certificate, the
addresses' quarantine, the termination email."""

import re
from datetime import timedelta

import pytest
from cryptography import x509
from django.utils import timezone

from certificates.models import CertificateOrder
from outbox.owed import dispatch_due
from provisioning import links
from provisioning.models import Job, Platform
from provisioning.services import (
    platform_dcv_submit,
    platform_order,
    platform_resume,
    platform_suspend,
    platform_terminate,
)
from tests.conftest import text_body
from tests.factories import AccountFactory
from tests.helpers import delivered_platform, validating_platform, work_off
from tests.provisioning.test_acme_flow import configured_platform
from tests.provisioning.test_flow import finish_finalisation
from zones.writers import get_writer

pytestmark = pytest.mark.django_db


@pytest.fixture
def dns(bind, settings):
    bind.configure(settings)
    return bind


@pytest.fixture
def acme(pebble, dns):
    return pebble


def test_a_suspended_platform_cannot_be_configured_and_its_page_says_why(
    customer_client, account, mailbox
):
    account.language = "en"  # the customer pages speak the account's language
    account.save()
    platform = delivered_platform(account)
    platform_suspend(platform_id=platform.pk, actor="api", reason="Unpaid invoice 42")
    setup_url = f"/setup/{links.setup_token(platform)}/"
    form = {
        "service": platform.service,
        "subdomain": "exchange",
        "domain": "example.com",
        "validation_email": "hostmaster",
    }

    response = customer_client.post(setup_url, form, follow=True)
    page = response.content.decode()
    assert "This platform is suspended" in page
    assert "Unpaid invoice 42" in page
    assert "cannot be configured or validated" in page
    platform.refresh_from_db()
    assert (platform.state, platform.server_name) == ("suspended", "")
    assert customer_client.get("/").content.decode().count(platform.service) >= 1  # still listed

    platform_resume(platform_id=platform.pk, actor="api")
    assert customer_client.post(setup_url, form).status_code == 302
    platform.refresh_from_db()
    assert platform.state == "configured"


def test_a_suspended_platform_cannot_be_validated(client, mailbox):
    account = AccountFactory(language="en")
    platform = validating_platform(account, domain="example.com")
    [dcv_email] = [m for m in mailbox.messages if "Domain Control Validation" in m["Subject"]]
    link = next(word for word in text_body(dcv_email).split() if "/dcv/" in word)
    platform_suspend(platform_id=platform.pk, actor="api", reason="Unpaid")
    client.force_login(account.users.get())

    response = client.post(link, {"code": "A" * 24}, follow=True)
    assert "This platform is suspended" in response.content.decode()
    platform.refresh_from_db()
    assert platform.state == "suspended"
    assert platform.certificate.dcv_attempts == 0  # the code was not even tried

    platform_resume(platform_id=platform.pk, actor="api")
    platform.refresh_from_db()
    assert platform.state == "certificate_pending"


def test_termination_removes_what_dns_assist_wrote_revokes_and_emails(acme, dns, mailbox):
    platform, client = configured_platform(dns_assist=True, domain=dns.zone)
    work_off()
    finish_finalisation()
    platform.refresh_from_db()
    assert platform.state == "ready"
    name = platform.server_name
    # A record the customer put beside DNS Assist's stays.
    get_writer().change_records(zone=dns.zone, name=name, rtype="A", ttl=60, add=["192.0.2.250"])
    serial = platform.certificate.serial
    assert acme.certificate_status(serial)["Status"] == "Valid"
    mailbox.messages.clear()

    platform_terminate(platform_id=platform.pk, actor="api")
    work_off()

    assert dns.served(name, "A") == {"192.0.2.250"}
    assert dns.served(name, "AAAA") == set()
    assert acme.certificate_status(serial)["Status"] == "Revoked"
    order = CertificateOrder.objects.get(pk=platform.certificate_id)
    assert (order.status, order.key_encrypted) == ("revoked", "")
    assert order.key_destroyed_at is not None
    [email] = mailbox.messages
    assert email["Subject"] == (
        f"[{platform.account.nic}] Your Private Exchange service {platform.service} "
        "has been terminated"
    )
    assert platform.service not in client.get("/").content.decode()
    [job] = Job.objects.filter(platform=platform, kind="terminate")
    assert (job.status, job.last_error) == ("done", "")

    # Run again (an operator's retry, a redelivery): nothing more happens.
    Job.objects.filter(pk=job.pk).update(status="pending", due_at=timezone.now())
    work_off()
    assert len(mailbox.messages) == 1


def test_addresses_are_not_reused_before_the_quarantine_ends_and_are_after(settings, mailbox):
    settings.PLATFORM_IPV4_POOL = ["192.0.2.7/32"]
    settings.PLATFORM_IPV6_POOL = ["2001:db8::/127"]
    settings.ADDRESS_QUARANTINE = 30 * 24 * 3600
    first = delivered_platform(AccountFactory())
    addresses = (first.ipv4, first.ipv6)
    platform_terminate(platform_id=first.pk, actor="api")
    work_off()

    second = platform_order(account=AccountFactory(), actor="test")
    work_off()
    second.refresh_from_db()
    assert (second.state, second.ipv4) == ("ordered", None)  # the pool's one address rests
    delivery = Job.objects.get(platform=second, kind="deliver")
    assert "No free address" in delivery.last_error

    # Thirty days later.
    Job.objects.filter(platform=first, kind="release_addresses").update(due_at=timezone.now())
    work_off()
    first.refresh_from_db()
    assert (first.ipv4, first.ipv6) == (None, None)
    Job.objects.filter(pk=delivery.pk).update(due_at=timezone.now())
    dispatch_due(Job)
    work_off()
    second.refresh_from_db()
    assert (second.state, second.ipv4, second.ipv6) == ("awaiting_setup", *addresses)
    assert Platform.objects.get(pk=first.pk).state == "terminated"


def test_the_release_waits_for_the_quarantine(settings, mailbox):
    settings.ADDRESS_QUARANTINE = 3600
    platform = delivered_platform(AccountFactory())
    platform_terminate(platform_id=platform.pk, actor="api")
    release = Job.objects.get(platform=platform, kind="release_addresses")
    expected = timezone.now() + timedelta(seconds=3600)
    assert abs((release.due_at - expected).total_seconds()) < 60


def test_the_suspended_page_speaks_french(customer_client, account, mailbox):
    account.language = "fr"
    account.save()
    platform = delivered_platform(account)
    platform_suspend(platform_id=platform.pk, actor="api", reason="Facture impayée")
    page = customer_client.get(f"/platforms/{platform.service}/").content.decode()
    assert "Cette plateforme est suspendue" in page
    assert "Motif : Facture impayée" in page
    assert "Suspendue" in page


def test_termination_lists_an_internal_ca_certificate_in_its_crl(client, settings, mailbox):
    settings.PORTAL_BASE_URL = "http://testserver"
    platform = validating_platform(AccountFactory(language="en"), domain="example.com")
    [dcv] = [m for m in mailbox.messages if "Domain Control Validation" in m["Subject"]]
    code = re.search(r"^\s{4}(\S+)\s*$", text_body(dcv), re.M).group(1)
    platform_dcv_submit(platform_id=platform.pk, code=code, actor="test")
    platform.refresh_from_db()
    serial = int(platform.certificate.serial, 16)
    crl = x509.load_der_x509_crl(client.get("/ca/intermediate.crl").content)
    assert crl.get_revoked_certificate_by_serial_number(serial) is None

    platform_terminate(platform_id=platform.pk, actor="api")
    work_off()
    crl = x509.load_der_x509_crl(client.get("/ca/intermediate.crl").content)
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert Platform.objects.get(pk=platform.pk).certificate.key_encrypted == ""
