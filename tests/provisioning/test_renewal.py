"""The platform side of certificate renewal, in the test process: the renewal owed at
issuance, issued at once within the reuse period or by the platform's method (email code,
DNS record on BIND9), reminders, the status page, admin's history and flag, revoke and
replace. Real processes run the same in test_renewal_processes.py."""

import re
import socket
from datetime import timedelta

import pytest
from cryptography import x509
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from certificates.models import CertificateOrder
from notifications.models import Email
from provisioning import links
from provisioning.models import Job, Platform, PlatformEvent, RenewalReminder
from provisioning.services import platform_order
from tests.conftest import text_body
from tests.factories import AccountFactory
from tests.helpers import work_off
from tests.provisioning.test_flow import finish_finalisation, paste_code
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def dns(bind, settings):
    bind.configure(settings)
    return bind


def set_up(platform, *, domain, dns_assist=False, method=None) -> Client:
    client = Client()
    client.force_login(platform.account.users.get())
    data = {
        "service": platform.service,
        "subdomain": "exchange",
        "domain": domain,
        "validation_email": "hostmaster",
        "dns_assist": "on" if dns_assist else "",
    }
    if method:
        data["validation_method"] = method
    response = client.post(f"/setup/{links.setup_token(platform)}/", data)
    assert response.status_code == 302, response.content.decode()
    return client


def ready_platform(dns, mailbox, *, language="en", dns_assist=False) -> tuple[Platform, Client]:
    """Set up with the email method, validated and ready; the renewal owed, not due yet."""
    account = AccountFactory(zones=[dns.zone] if dns_assist else [], language=language)
    platform = platform_order(account=account, actor="test")
    work_off()
    client = set_up(platform, domain=dns.zone, dns_assist=dns_assist)
    work_off()
    [dcv] = mailbox.with_subject("Domain Control Validation")
    paste_code(client, dcv)
    finish_finalisation()
    platform.refresh_from_db()
    assert platform.state == "ready"
    mailbox.messages.clear()
    return platform, client


def renewal_due_now(platform) -> None:
    Job.objects.filter(platform=platform, kind="certificate_renew", status="pending").update(
        due_at=timezone.now()
    )
    work_off()


def test_issuance_owes_the_renewal_at_two_thirds_of_the_lifetime(dns, mailbox, settings):
    settings.CERTIFICATE_LIFETIME = 120
    platform, _ = ready_platform(dns, mailbox)
    order = platform.certificate
    [job] = Job.objects.filter(platform=platform, kind="certificate_renew")
    assert job.status == "pending"
    lifetime = (order.not_after - order.issued_at).total_seconds()
    assert abs((job.due_at - order.issued_at).total_seconds() - lifetime * 0.67) < 1
    assert platform.state == "ready"


def test_renewal_by_email_sends_a_new_validation_and_the_code_renews(dns, mailbox, settings):
    settings.DCV_REUSE_PERIOD = 0
    settings.CERTIFICATE_LIFETIME = 3600
    platform, client = ready_platform(dns, mailbox, language="fr")
    first = platform.certificate
    settings.CERTIFICATE_LIFETIME = None
    renewal_due_now(platform)

    platform.refresh_from_db()
    assert platform.state == "ready" and platform.certificate == first
    renewal = CertificateOrder.objects.get(renewal_of=first)
    [dcv] = mailbox.with_subject("Domain Control Validation")
    assert dcv["Subject"] == (
        f"ORDER #{renewal.order_number} - Domain Control Validation for {platform.server_name}"
    )
    assert dcv["X-Envelope-To"] == platform.validation_email
    body = text_body(dcv)
    # In the account's language, with the renewal order's number and its own link.
    assert f"commande n° {renewal.order_number}" in body
    assert f"/dcv/{renewal.order_number}/" in body
    status = client.get(f"/platforms/{platform.service}/").content.decode()
    assert f"#{renewal.order_number} - Domain Control Validation" in status

    page = paste_code(client, dcv)
    assert "Le code est valide" in page
    work_off()
    platform.refresh_from_db()
    first.refresh_from_db()
    new = platform.certificate
    assert new == renewal and new.status == "issued"
    assert first.status == "superseded"
    assert new.serial != first.serial and new.not_after > first.not_after
    old_key = x509.load_pem_x509_certificate(first.certificate_pem.encode()).public_key()
    new_key = x509.load_pem_x509_certificate(new.certificate_pem.encode()).public_key()
    assert old_key.public_numbers() != new_key.public_numbers()
    chain = client.get(f"/platforms/{platform.service}/certificate-chain.pem")
    assert chain.content.decode().startswith(new.certificate_pem)
    [renewed] = mailbox.with_subject("renouvelé")
    assert renewed["X-Envelope-To"] == platform.account.email
    assert f"{new.not_after:%d/%m/%Y}" in text_body(renewed)
    assert platform.state == "ready"
    [next_job] = Job.objects.filter(platform=platform, kind="certificate_renew", status="pending")
    assert next_job.due_at > timezone.now()
    assert PlatformEvent.objects.filter(platform=platform, kind="certificate_renewed").count() == 1


def test_within_the_reuse_period_the_renewal_needs_nobody(dns, mailbox, settings):
    settings.DCV_REUSE_PERIOD = 3600
    platform, _ = ready_platform(dns, mailbox)
    first = platform.certificate
    renewal_due_now(platform)

    platform.refresh_from_db()
    assert platform.certificate.renewal_of == first
    assert platform.certificate.status == "issued"
    assert mailbox.with_subject("Domain Control Validation") == []
    [renewed] = mailbox.with_subject("is renewed until")
    assert platform.certificate.serial in text_body(renewed)
    # The job that renewed it is the next renewal, rescheduled: one open row.
    [job] = Job.objects.filter(platform=platform, kind="certificate_renew")
    assert job.status == "pending" and job.due_at > timezone.now()


def test_the_billing_system_is_told_of_the_renewal(dns, mailbox, settings):
    settings.DCV_REUSE_PERIOD = 3600
    platform, _ = ready_platform(dns, mailbox)
    settings.ORDER_WEBHOOK_URL = "http://127.0.0.1:9/closed"  # nothing listens: stays owed
    settings.ORDER_WEBHOOK_SECRET = "s" * 32
    renewal_due_now(platform)

    platform.refresh_from_db()
    [event] = WebhookDelivery.objects.filter(
        service=platform.service, event_type="certificate.renewed"
    )
    assert event.payload["serial"] == platform.certificate.serial
    assert event.payload["not_after"] == platform.certificate.not_after.isoformat()


def test_a_renewal_job_run_twice_sends_nothing_twice(dns, mailbox, settings):
    from provisioning.services.renewal import platform_certificate_renew

    settings.DCV_REUSE_PERIOD = 0
    platform, _ = ready_platform(dns, mailbox)
    renewal_due_now(platform)
    platform_certificate_renew(platform_id=platform.pk)  # a redelivered message
    work_off()
    assert len(mailbox.with_subject("Domain Control Validation")) == 1
    assert CertificateOrder.objects.filter(renewal_of=platform.certificate).count() == 1
    assert Job.objects.filter(platform=platform, kind="renewal_reminder").count() == 1


def test_reminders_go_in_order_each_once_then_the_certificate_is_flagged(dns, mailbox, settings):
    settings.DCV_REUSE_PERIOD = 0
    settings.RENEWAL_REMINDER_SECONDS = [30 * 86400, 14 * 86400, 7 * 86400, 3 * 86400, 86400]
    platform, client = ready_platform(dns, mailbox)
    renewal_due_now(platform)
    current = platform.certificate
    renewal = CertificateOrder.objects.get(renewal_of=current)
    now = timezone.now()

    def days_left(days: float) -> None:
        CertificateOrder.objects.filter(pk=current.pk).update(
            not_after=timezone.now() + timedelta(days=days)
        )
        Job.objects.filter(platform=platform, kind="renewal_reminder", status="pending").update(
            due_at=timezone.now()
        )
        work_off()

    for days in (29.5, 29.4, 13.9, 6.5, 2.9, 2.8, 0.5):
        days_left(days)
    reminders = mailbox.with_subject("Reminder: validate the renewal")
    assert [m["X-Envelope-To"] for m in reminders] == [platform.account.email] * 5
    assert list(
        RenewalReminder.objects.filter(order=renewal).values_list("seconds_before", flat=True)
    ) == [30 * 86400, 14 * 86400, 7 * 86400, 3 * 86400, 86400]
    body = text_body(reminders[0])
    assert platform.validation_email in body
    assert f"/dcv/{renewal.order_number}/" in body
    assert links.status_url(platform) in body
    assert "validate with a DNS record" in body

    status = client.get(f"/platforms/{platform.service}/").content.decode()
    assert "is not renewed yet" in status
    admin_list_flags(platform, expected=True)
    CertificateOrder.objects.filter(pk=current.pk).update(not_after=now - timedelta(minutes=1))
    status = client.get(f"/platforms/{platform.service}/").content.decode()
    assert 'class="error certificate-expired"' in status
    home = client.get("/").content.decode()
    assert 'class="certificate-expired"' in home


def admin_list_flags(platform, *, expected: bool) -> None:
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("ops", "ops@example.net", "x")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/provisioning/platform/?certificate_expiring=yes").content.decode()
    assert (platform.service in page) is expected
    detail = client.get(f"/admin/provisioning/platform/{platform.pk}/change/").content.decode()
    assert "Certificate history" in detail
    assert platform.certificate.serial in detail


def test_dns_method_with_dns_assist_issues_without_any_email(dns, mailbox):
    account = AccountFactory(zones=[dns.zone], language="en")
    platform = platform_order(account=account, actor="test")
    work_off()
    mailbox.messages.clear()
    set_up(platform, domain=dns.zone, dns_assist=True, method="dns")
    work_off()
    platform.refresh_from_db()
    assert platform.validation_method == "dns"
    assert platform.certificate.method == "dns"
    assert platform.certificate.status == "issued"
    assert platform.state == "finalising"
    assert mailbox.with_subject("Domain Control Validation") == []
    # Written for the check, removed after issuance.
    assert dns.served(f"_dnsauth.exchange.{dns.zone}", "TXT") == set()
    assert Email.objects.filter(kind="dcv").count() == 0


def test_dns_method_without_dns_assist_shows_the_record_and_issues_once_served(dns, mailbox):
    account = AccountFactory(language="en")
    platform = platform_order(account=account, actor="test")
    work_off()
    client = set_up(platform, domain=dns.zone, method="dns")
    work_off()
    platform.refresh_from_db()
    assert platform.state == "certificate_pending"
    page = client.get(f"/platforms/{platform.service}/").content.decode()
    name = f"_dnsauth.exchange.{dns.zone}"
    value = re.search(r'data-copy="([A-Za-z0-9_-]{20,})"', page.split("dns-validation-record")[1])
    assert name in page and "_dnsauth.exchange" in page and value
    response = client.post(f"/platforms/{platform.service}/check-certificate-dns/", follow=True)
    assert "The record is not served yet" in response.content.decode()

    dns.set_records(name, "TXT", [f'"{value.group(1)}"'])  # as the customer would
    response = client.post(f"/platforms/{platform.service}/check-certificate-dns/", follow=True)
    assert "checked a few seconds ago" in response.content.decode()  # each asks the servers
    cache.clear()  # a few seconds later
    response = client.post(f"/platforms/{platform.service}/check-certificate-dns/", follow=True)
    assert "the certificate is issued" in response.content.decode()
    platform.refresh_from_db()
    assert platform.certificate.status == "issued"
    assert mailbox.with_subject("Domain Control Validation") == []


def test_switching_the_method_while_validation_waits(dns, mailbox):
    account = AccountFactory(language="en")
    platform = platform_order(account=account, actor="test")
    work_off()
    client = set_up(platform, domain=dns.zone)
    work_off()
    url = f"/platforms/{platform.service}/validation-method/"

    page = client.post(url, {"validation_method": "bogus"}, follow=True).content.decode()
    assert "Choose e-mail or DNS record." in page
    page = client.post(url, {"validation_method": "dns"}, follow=True).content.decode()
    assert "Add the TXT record shown below" in page
    platform.refresh_from_db()
    assert platform.certificate.method == "dns" and platform.validation_method == "dns"
    assert Job.objects.filter(platform=platform, kind="certificate_dns").exists()

    mailbox.messages.clear()
    page = client.post(url, {"validation_method": "email"}, follow=True).content.decode()
    assert "A new validation e-mail is on its way" in page
    work_off()
    [dcv] = mailbox.with_subject("Domain Control Validation")
    assert "The code is valid" in paste_code(client, dcv)
    platform.refresh_from_db()
    assert platform.certificate.status == "issued"
    page = client.post(url, {"validation_method": "dns"}, follow=True).content.decode()
    assert "The certificate is not waiting for validation." in page

    stranger = Client()
    stranger.force_login(AccountFactory().users.get())
    assert stranger.post(url, {"validation_method": "dns"}).status_code == 404


def test_switching_to_email_removes_the_record_dns_assist_wrote(
    dns, mailbox, settings, django_capture_on_commit_callbacks
):
    account = AccountFactory(zones=[dns.zone], language="en")
    platform = platform_order(account=account, actor="test")
    work_off()
    client = set_up(platform, domain=dns.zone, dns_assist=True, method="dns")
    with socket.socket(type=socket.SOCK_DGRAM) as silent:  # the record written, not seen yet
        silent.bind(("127.0.0.1", 0))
        settings.DNS_CHECK_RESOLVERS = [f"127.0.0.1:{silent.getsockname()[1]}"]
        settings.DNS_TIMEOUT = 0.3
        work_off()
    name = f"_dnsauth.exchange.{dns.zone}"
    [value] = dns.served(name, "TXT")
    platform.refresh_from_db()
    assert platform.certificate.status == "pending"
    url = f"/platforms/{platform.service}/validation-method/"

    with django_capture_on_commit_callbacks(execute=True):  # removed once the switch commits
        page = client.post(url, {"validation_method": "email"}, follow=True).content.decode()
    assert "A new validation e-mail is on its way" in page
    assert dns.served(name, "TXT") == set()
    assert value not in page


def test_revoke_and_replace_revokes_then_renews(dns, mailbox, settings):
    from django.contrib.auth import get_user_model

    settings.DCV_REUSE_PERIOD = 3600
    platform, _ = ready_platform(dns, mailbox)
    first = platform.certificate
    admin = get_user_model().objects.create_superuser("ops", "ops@example.net", "x")
    client = Client()
    client.force_login(admin)
    client.post(
        "/admin/provisioning/platform/",
        {"action": "revoke_and_replace", "_selected_action": [platform.pk]},
    )
    work_off()
    first.refresh_from_db()
    platform.refresh_from_db()
    assert first.status == "revoked" and first.revocation_reason == 1
    assert platform.certificate.renewal_of == first
    assert platform.certificate.status == "issued"
    kinds = list(platform.events.values_list("kind", flat=True))
    assert "certificate_revoked" in kinds and "certificate_renewed" in kinds


def test_the_first_validation_email_is_in_the_accounts_language(dns, mailbox):
    account = AccountFactory(language="fr")
    platform = platform_order(account=account, actor="test")
    work_off()
    set_up(platform, domain=dns.zone)
    work_off()
    [dcv] = mailbox.with_subject("Domain Control Validation")
    assert f"commande n° {platform.order_number}" in text_body(dcv)
    assert Email.objects.get(kind="dcv").language == "fr"


def test_renewal_by_dns_record_with_dns_assist_needs_nobody(dns, mailbox, settings):
    settings.DCV_REUSE_PERIOD = 0
    account = AccountFactory(zones=[dns.zone], language="en")
    platform = platform_order(account=account, actor="test")
    work_off()
    set_up(platform, domain=dns.zone, dns_assist=True, method="dns")
    work_off()
    finish_finalisation()
    platform.refresh_from_db()
    first = platform.certificate
    assert platform.state == "ready" and first.method == "dns"
    mailbox.messages.clear()

    renewal_due_now(platform)
    platform.refresh_from_db()
    assert platform.certificate.renewal_of == first
    assert platform.certificate.status == "issued" and platform.certificate.method == "dns"
    assert [m["Subject"] for m in mailbox.messages] == [
        f"[{account.nic}] The SSL certificate of {platform.service} is renewed until "
        f"{platform.certificate.not_after:%Y-%m-%d}"
    ]
    assert dns.served(f"_dnsauth.exchange.{dns.zone}", "TXT") == set()
    assert not Job.objects.filter(platform=platform, kind="renewal_reminder").exists()


def test_the_setup_form_refuses_an_unknown_validation_method(dns, mailbox):
    account = AccountFactory(language="en")
    platform = platform_order(account=account, actor="test")
    work_off()
    client = Client()
    client.force_login(account.users.get())
    response = client.post(
        f"/setup/{links.setup_token(platform)}/",
        {
            "service": platform.service,
            "subdomain": "exchange",
            "domain": dns.zone,
            "validation_email": "hostmaster",
            "validation_method": "carrier-pigeon",
        },
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    platform.refresh_from_db()
    assert platform.state == "awaiting_setup"


def test_the_api_shows_the_record_a_waiting_renewal_needs(dns, mailbox, settings, client):
    settings.DCV_REUSE_PERIOD = 0
    settings.ORDER_API_TOKEN = "t" * 32
    platform, customer = ready_platform(dns, mailbox)
    current = platform.certificate
    renewal_due_now(platform)  # by email, as the platform was validated
    switched = customer.post(
        f"/platforms/{platform.service}/validation-method/", {"validation_method": "dns"}
    )
    assert switched.status_code == 302

    response = client.get(
        f"/api/orders/{platform.service}/", headers={"Authorization": "Bearer " + "t" * 32}
    )
    certificate = response.json()["certificate"]
    assert certificate["serial"] == current.serial  # still the one in use
    renewal = CertificateOrder.objects.get(renewal_of=current)
    assert renewal.method == "dns" and renewal.status == "pending"
    record = certificate["dns_record"]
    assert record["name"] == f"_dnsauth.exchange.{dns.zone}" and record["type"] == "TXT"
    assert record["value"] in customer.get(f"/platforms/{platform.service}/").content.decode()


def test_termination_revokes_and_destroys_every_certificate_of_the_platform(dns, mailbox, settings):
    from provisioning.services import platform_terminate

    settings.DCV_REUSE_PERIOD = 0
    platform, _ = ready_platform(dns, mailbox)
    current = platform.certificate
    renewal_due_now(platform)  # a renewal waits for the customer, with a key of its own
    renewal = CertificateOrder.objects.get(renewal_of=current)
    assert renewal.key_encrypted

    platform_terminate(platform_id=platform.pk, actor="test")
    work_off()

    current.refresh_from_db()
    renewal.refresh_from_db()
    assert current.status == "revoked"
    assert current.key_encrypted == "" and current.key_destroyed_at is not None
    assert renewal.key_encrypted == "" and renewal.key_destroyed_at is not None
    assert not Job.objects.filter(platform=platform, kind="certificate_renew", status="pending")
