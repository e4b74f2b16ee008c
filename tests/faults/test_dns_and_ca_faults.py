"""Fault 4: the DNS primary (BIND9) and the certificate authority (pebble, over ACME) fail
and recover, under the real worker. DNS never blocks the certificate; a short outage is
absorbed by the retries, a longer one is an error an operator retries; the CA's outage
delays the certificate, which is issued once when the CA is back."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from provisioning.models import Job, Platform
from provisioning.services import platform_order
from tests.factories import AccountFactory
from tests.faults.helpers import (
    Customer,
    assert_certificate_once,
    assert_dns_records_once,
    assert_each_email_once,
    assert_events_once,
    assert_nothing_owed_twice,
    wait_until,
)

pytestmark = pytest.mark.postgres


def dns_assist_job(platform: Platform) -> Job:
    return Job.objects.filter(platform=platform, kind="dns_assist").order_by("pk").last()


def test_dns_primary_down_then_back(portal, smtp, dns, settings):
    """A short outage is retried away; a longer one ends in the DNS error state (the
    certificate goes on regardless), and the operator's retry writes the records. The
    checks of a customer's own records cannot conclude meanwhile, and carry on after."""
    settings.DNS_TIMEOUT = 1
    account = AccountFactory(zones=[dns.zone, dns.sub_zone], language="en")
    customer = Customer(account, smtp)
    portal.start_beat()
    portal.start_worker(JOB_MAX_ATTEMPTS="5")
    short, longer, manual = (platform_order(account=account, actor="test") for _ in range(3))
    updates_before = dns.updates_received()

    # Down for two attempts of five: a later one writes the records.
    dns.stop()
    customer.configure(short, domain=dns.zone, dns_assist=True)
    wait_until(lambda: dns_assist_job(short).attempts >= 2, what="two failed attempts")
    job = dns_assist_job(short)
    assert job.status in ("pending", "running")
    assert "did not answer" in job.last_error or "refused" in job.last_error, job.last_error
    customer.email(short, "dcv")  # the certificate did not wait for DNS
    dns.start()
    wait_until(lambda: Platform.objects.get(pk=short.pk).dns_state == "verified")
    short.refresh_from_db()
    assert_dns_records_once(dns, short)

    # Down for all five attempts: DNS Assist gives up, visibly; nothing more by itself.
    # The records of a customer who does without DNS Assist cannot be checked meanwhile.
    dns.stop()
    customer.configure(longer, domain=dns.sub_zone, dns_assist=True)
    customer.configure(manual, domain=f"own.{dns.zone}", dns_assist=False)
    wait_until(lambda: Platform.objects.get(pk=longer.pk).dns_state == "error")
    longer.refresh_from_db()
    assert dns_assist_job(longer).status == "failed" and dns_assist_job(longer).attempts == 5
    assert longer.dns_message and longer.state == "certificate_pending"
    page = customer.client.get(f"/platforms/{longer.service}/")
    assert page.status_code == 200 and longer.dns_message[:40] in page.content.decode()
    manual.refresh_from_db()
    assert manual.dns_state == "instructions_sent" and manual.dns_checked_at is None
    customer.email(manual, "dns_instructions")
    dns.start()
    customer.email(longer, "dcv")
    assert Platform.objects.get(pk=longer.pk).dns_state == "error"
    dns.set_records(manual.server_name, "A", [manual.ipv4])  # the customer's own records
    dns.set_records(manual.server_name, "AAAA", [manual.ipv6])
    wait_until(lambda: Platform.objects.get(pk=manual.pk).dns_state == "verified")

    # The operator retries DNS Assist from admin.
    operator = get_user_model().objects.create_superuser("olga", "olga@hoster.example", "pw")
    admin = Client()
    admin.force_login(operator)
    response = admin.post(
        "/admin/provisioning/platform/",
        {"action": "retry_dns_assist", "_selected_action": [longer.pk]},
    )
    assert response.status_code == 302
    wait_until(lambda: Platform.objects.get(pk=longer.pk).dns_state == "verified")
    longer.refresh_from_db()
    assert_dns_records_once(dns, longer)
    assert dns.updates_received() - updates_before == 4  # one per platform, two by hand

    # All go on to ready, each email once.
    settings.FINALISATION_DELAY = 0
    for platform in (short, longer, manual):
        assert customer.validate(platform).status_code == 200
    for platform in (short, longer, manual):
        customer.email(platform, "ready")
        platform.refresh_from_db()
        assert platform.state == "ready"
        assert_events_once(platform)
        assert_certificate_once(platform)
    assert_dns_records_once(dns, manual)
    assert_each_email_once(
        smtp,
        {
            short: ["delivery", "dcv", "ready"],
            longer: ["delivery", "dcv", "ready"],
            manual: ["delivery", "dns_instructions", "dcv", "ready"],
        },
    )


def test_certificate_authority_down_then_back(portal, smtp, dns, pebble, settings):
    """ACME with DNS Assist: pebble is down when the certificate is requested; the job is
    retried until pebble is back (having forgotten everything, as a restarted pebble
    does), then the certificate is issued once and the platform goes on to ready."""
    settings.FINALISATION_DELAY = 1
    account = AccountFactory(zones=[dns.zone], language="en")
    customer = Customer(account, smtp)
    portal.start_beat()
    portal.start_worker(JOB_MAX_ATTEMPTS="20", RETRY_BACKOFF_MAX="1")
    platform = platform_order(account=account, actor="test")

    pebble.stop()
    customer.configure(platform, domain=dns.zone, dns_assist=True)

    def acme_job() -> Job | None:
        return Job.objects.filter(platform=platform, kind="acme_dns").first()

    wait_until(lambda: acme_job() and acme_job().attempts >= 3, what="three failed attempts")
    assert "Could not reach the certificate authority" in acme_job().last_error
    platform.refresh_from_db()
    assert platform.state == "certificate_pending"
    assert platform.certificate.status != "issued"
    pebble.start()

    customer.email(platform, "ready", timeout=60)
    platform.refresh_from_db()
    assert platform.state == "ready"
    assert platform.certificate.backend == "acme"
    assert "Pebble Intermediate CA" in platform.certificate.issuer
    assert_certificate_once(platform)
    assert dns.served(f"_acme-challenge.{platform.server_name}", "TXT") == set()
    wait_until(lambda: Platform.objects.get(pk=platform.pk).dns_state == "verified")
    assert_dns_records_once(dns, platform)
    assert_each_email_once(smtp, {platform: ["delivery", "ready"]})
    assert_events_once(platform)
    assert_nothing_owed_twice(platform)
