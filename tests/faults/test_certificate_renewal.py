"""Certificate renewal with real processes (Celery worker and beat on Redis, PostgreSQL,
SMTP, BIND9, pebble), on short certificates: the renewal comes when a third of the
lifetime is left (CERTIFICATE_RENEW_BEFORE_PERCENT=33), by email, at once within the
reuse period, unattended with ACME and DNS Assist, and by DNS record; reminders to a
customer who never validates; and the faults: a worker killed holding the renewal, the CA
down at renewal time. The README's 120 s lifetime renews at 80 s; these use 21 to 36 s
lifetimes, the same arithmetic, to keep the suite fast."""

import re
import time

import pytest
from cryptography import x509
from django.contrib.auth import get_user_model
from django.test import Client

from certificates.models import CertificateOrder
from notifications.models import Email
from provisioning.models import Job, Platform, RenewalReminder
from provisioning.services import platform_order
from tests.conftest import text_body
from tests.factories import AccountFactory
from tests.faults.helpers import (
    Customer,
    job_running,
    lock_waiters,
    platform_locked,
    wait_until,
)

pytestmark = pytest.mark.postgres


def renewal_settings(settings, *, lifetime: int, reuse: int, reminders=None) -> None:
    """The test process (the web: it issues on the customer's code) and the worker and
    beat (they share these settings) run with the same lifetimes."""
    settings.CERTIFICATE_LIFETIME = lifetime
    settings.DCV_REUSE_PERIOD = reuse
    settings.FINALISATION_DELAY = 1
    if reminders is not None:
        settings.RENEWAL_REMINDER_SECONDS = reminders


def ready_platform(portal, dns, smtp, *, language="en") -> tuple[Platform, Customer]:
    """Ordered, set up with DNS Assist and the email method, validated; ready."""
    account = AccountFactory(zones=[dns.zone], language=language)
    customer = Customer(account, smtp)
    platform = platform_order(account=account, actor="test")
    customer.configure(platform, domain=dns.zone, dns_assist=True)
    assert "The code is valid" in customer.validate(platform).content.decode()
    wait_until(
        lambda: Platform.objects.get(pk=platform.pk).state == "ready", what="ready", timeout=30
    )
    platform.refresh_from_db()
    return platform, customer


def renewal_of(order: CertificateOrder, *, timeout: float) -> CertificateOrder:
    return wait_until(
        lambda: CertificateOrder.objects.filter(renewal_of=order).first(),
        timeout=timeout,
        what=f"renewal of order {order.order_number}",
    )


def email_with(smtp, text: str, *, timeout: float):
    return wait_until(lambda: smtp.with_subject(text), timeout=timeout, what=f"email “{text}”")


def paste(customer: Customer, message) -> str:
    body = text_body(message)
    code = re.search(r"^\s{4}(\S+)\s*$", body, re.M).group(1)
    path = re.search(r"https?://[^/\s]+(/dcv/\S+/)", body).group(1)
    return customer.client.post(path, {"code": code}).content.decode()


def start(portal) -> None:
    portal.start_worker()
    portal.start_beat()


def test_email_renewal_sends_a_new_validation_at_two_thirds_and_the_code_renews(
    portal, dns, smtp, settings
):
    renewal_settings(settings, lifetime=36, reuse=0)
    start(portal)
    platform, customer = ready_platform(portal, dns, smtp)
    first = platform.certificate
    lifetime = (first.not_after - first.issued_at).total_seconds()

    renewal = renewal_of(first, timeout=60)
    subject = (
        f"ORDER #{renewal.order_number} - Domain Control Validation for {platform.server_name}"
    )
    [dcv] = email_with(smtp, subject, timeout=30)
    # The worker records the sending once the SMTP server has accepted the message.
    sent_at = wait_until(
        lambda: Email.objects.get(message_id=dcv["Message-ID"]).sent_at, what="sent_at recorded"
    )
    # Two thirds of the lifetime after issuance (80 s of 120 s), give or take the sweeps.
    after = (sent_at - first.issued_at).total_seconds()
    assert lifetime * 0.67 - 1 <= after <= lifetime * 0.67 + 8, after
    assert dcv["X-Envelope-To"] == platform.validation_email
    assert Platform.objects.get(pk=platform.pk).state == "ready"

    assert "The code is valid" in paste(customer, dcv)
    platform.refresh_from_db()
    new = platform.certificate
    first.refresh_from_db()
    assert new.pk == renewal.pk and first.status == "superseded"
    assert new.serial != first.serial and new.not_after > first.not_after
    old_leaf = x509.load_pem_x509_certificate(first.certificate_pem.encode())
    new_leaf = x509.load_pem_x509_certificate(new.certificate_pem.encode())
    assert old_leaf.public_key().public_numbers() != new_leaf.public_key().public_numbers()
    chain = customer.client.get(f"/platforms/{platform.service}/certificate-chain.pem")
    assert chain.content.decode().startswith(new.certificate_pem)
    [renewed] = email_with(smtp, "is renewed until", timeout=20)
    assert f"{new.not_after:%Y-%m-%d %H:%M}" in text_body(renewed)
    ids = [m["Message-ID"] for m in smtp.messages]
    assert len(ids) == len(set(ids))


def test_within_the_reuse_period_renewal_sends_no_validation_email(portal, dns, smtp, settings):
    renewal_settings(settings, lifetime=21, reuse=3600)
    start(portal)
    platform, _customer = ready_platform(portal, dns, smtp)
    first = platform.certificate

    [renewed] = email_with(smtp, "is renewed until", timeout=45)
    platform.refresh_from_db()
    assert platform.certificate.renewal_of_id == first.pk
    assert platform.certificate.status == "issued"
    assert platform.certificate.serial in text_body(renewed)
    assert len(smtp.with_subject("Domain Control Validation")) == 1  # the first one only
    assert platform.state == "ready"


def test_a_customer_who_never_validates_gets_the_reminders_in_order_then_is_flagged(
    portal, dns, smtp, settings
):
    renewal_settings(settings, lifetime=33, reuse=0, reminders=[9, 6, 3])
    start(portal)
    platform, customer = ready_platform(portal, dns, smtp)
    first = platform.certificate
    renewal = renewal_of(first, timeout=45)

    wait_until(
        lambda: len(smtp.with_subject("Reminder: validate the renewal")) >= 3,
        timeout=40,
        what="three reminders",
    )
    reminders = smtp.with_subject("Reminder: validate the renewal")
    assert [m["X-Envelope-To"] for m in reminders] == [platform.account.email] * 3
    rows = RenewalReminder.objects.filter(order=renewal).order_by("created_at")
    assert [r.seconds_before for r in rows] == [9, 6, 3]
    assert f"/dcv/{renewal.order_number}/" in text_body(reminders[0])

    wait_until(lambda: first.not_after.timestamp() < time.time(), timeout=20, what="expiry")
    time.sleep(2)  # the reminder job's last look, after the end
    assert len(smtp.with_subject("Reminder: validate the renewal")) == 3
    status = customer.client.get(f"/platforms/{platform.service}/").content.decode()
    assert 'class="error certificate-expired"' in status
    admin = get_user_model().objects.create_superuser("ops", "ops@example.net", "x")
    staff = Client()
    staff.force_login(admin)
    flagged = staff.get("/admin/provisioning/platform/?certificate_expiring=yes")
    assert platform.service in flagged.content.decode()


def test_dns_record_method_without_dns_assist_issues_with_no_email(portal, dns, smtp, settings):
    settings.DNS_CHECK_INTERVAL = 1
    start(portal)
    account = AccountFactory(language="en")
    customer = Customer(account, smtp)
    platform = platform_order(account=account, actor="test")
    body = text_body(customer.email(platform, "delivery"))
    path = re.search(r"https?://[^/\s]+(/setup/\S+/)", body).group(1)
    customer.client.post(
        path,
        {
            "service": platform.service,
            "subdomain": "exchange",
            "domain": dns.zone,
            "validation_email": "hostmaster",
            "validation_method": "dns",
        },
    )
    order = wait_until(
        lambda: Platform.objects.get(pk=platform.pk).certificate, what="order", timeout=20
    )
    page = customer.client.get(f"/platforms/{platform.service}/").content.decode()
    value = re.search(r'data-copy="([A-Za-z0-9_-]{20,})"', page.split("dns-validation-record")[1])
    dns.set_records(f"_dnsauth.exchange.{dns.zone}", "TXT", [f'"{value.group(1)}"'])

    wait_until(
        lambda: CertificateOrder.objects.get(pk=order.pk).status == "issued",
        timeout=30,
        what="issued by the periodic check",
    )
    assert smtp.with_subject("Domain Control Validation") == []


def test_acme_with_dns_assist_renews_unattended(portal, dns, smtp, settings, pebble_with):
    pebble_with(eab_required=True, certificate_validity=30)
    settings.FINALISATION_DELAY = 1
    start(portal)
    account = AccountFactory(zones=[dns.zone], language="en")
    customer = Customer(account, smtp)
    platform = platform_order(account=account, actor="test")
    customer.configure(platform, domain=dns.zone, dns_assist=True)
    wait_until(
        lambda: Platform.objects.get(pk=platform.pk).state == "ready", what="ready", timeout=60
    )
    platform.refresh_from_db()
    first = platform.certificate
    assert first.backend == "acme"

    [renewed] = email_with(smtp, "is renewed until", timeout=60)
    platform.refresh_from_db()
    assert platform.certificate.renewal_of_id == first.pk
    assert platform.certificate.serial in text_body(renewed)
    assert platform.certificate.serial != first.serial
    assert "Pebble Intermediate CA" in platform.certificate.issuer
    assert smtp.with_subject("Domain Control Validation") == []
    assert dns.served(f"_acme-challenge.exchange.{dns.zone}", "TXT") == set()


def test_a_worker_killed_holding_the_renewal_is_taken_over_and_sends_once(
    portal, dns, smtp, settings
):
    renewal_settings(settings, lifetime=21, reuse=0)
    start(portal)
    platform, _customer = ready_platform(portal, dns, smtp)
    first = platform.certificate
    with platform_locked(platform.pk):
        wait_until(
            lambda: job_running(platform, "certificate_renew") and lock_waiters() >= 1,
            timeout=40,
            what="the worker holding the renewal",
        )
        portal.worker.kill()
    portal.start_worker()

    renewal = renewal_of(first, timeout=30)
    email_with(smtp, f"ORDER #{renewal.order_number}", timeout=30)
    time.sleep(3)  # any second delivery would arrive by now
    assert len(smtp.with_subject(f"ORDER #{renewal.order_number}")) == 1
    assert CertificateOrder.objects.filter(renewal_of=first).count() == 1
    job = Job.objects.get(platform=platform, kind="certificate_renew")
    assert job.status == "done" and job.attempts == 2


def test_the_ca_down_at_renewal_time_is_retried_with_backoff_and_shown(
    portal, dns, smtp, settings, pebble_with
):
    ca = pebble_with(eab_required=True, certificate_validity=30)
    settings.FINALISATION_DELAY = 1
    start(portal)
    account = AccountFactory(zones=[dns.zone], language="en")
    customer = Customer(account, smtp)
    platform = platform_order(account=account, actor="test")
    customer.configure(platform, domain=dns.zone, dns_assist=True)
    wait_until(
        lambda: Platform.objects.get(pk=platform.pk).state == "ready", what="ready", timeout=60
    )
    platform.refresh_from_db()
    first = platform.certificate
    ca.stop()

    job = wait_until(
        lambda: (
            Job.objects.filter(
                platform=platform, kind="certificate_renew", status="pending", attempts__gte=1
            )
            .exclude(last_error="")
            .first()
        ),
        timeout=45,
        what="a failed renewal attempt, waiting out its backoff",
    )
    assert job.last_error  # what the operator reads on the platform's page
    assert Platform.objects.get(pk=platform.pk).state == "ready"

    pebble_with(eab_required=True, certificate_validity=30)  # the CA is back
    email_with(smtp, "is renewed until", timeout=45)
    platform.refresh_from_db()
    assert platform.certificate.renewal_of_id == first.pk
    assert CertificateOrder.objects.filter(renewal_of=first).count() == 1
