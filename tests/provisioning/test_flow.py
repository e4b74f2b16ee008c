"""The guide's five steps in the test process, against BIND9, the internal CA and SMTP."""

import html
import re

import pytest
from django.test import Client
from django.utils import timezone

from notifications.models import Email
from provisioning import links
from provisioning.models import Job, Platform
from provisioning.services import platform_order
from tests.conftest import html_body, text_body
from tests.factories import AccountFactory
from tests.helpers import work_off

pytestmark = pytest.mark.django_db


@pytest.fixture
def dns(bind, settings):
    bind.configure(settings)
    return bind


def configure(platform, *, dns_assist: bool, domain: str) -> Client:
    client = Client()
    client.force_login(platform.account.users.get())
    response = client.post(
        f"/setup/{links.setup_token(platform)}/",
        {
            "service": platform.service,
            "subdomain": "exchange",
            "domain": domain,
            "validation_email": "hostmaster",
            "dns_assist": "on" if dns_assist else "",
        },
    )
    assert response.status_code == 302, response.content.decode()
    return client


def paste_code(client, message) -> str:
    body = text_body(message)
    code = re.search(r"^\s{4}(\S+)\s*$", body, re.M).group(1)
    path = re.search(r"https?://[^/\s]+(/dcv/\S+/)", body).group(1)
    page = client.post(path, {"code": f"  {code.lower()} "}).content.decode()
    return page


def finish_finalisation() -> None:
    """Four hours later."""
    Platform.objects.filter(state="finalising").update(due_at=timezone.now())
    Job.objects.filter(kind="finalise").update(due_at=timezone.now())
    work_off()


def test_dns_assist_platform_goes_from_order_to_ready(dns, mailbox, settings):
    account = AccountFactory(nic="xx-70000-ovh", zones=[dns.zone], language="fr")
    platform = platform_order(account=account, actor="test")
    work_off()
    client = configure(platform, dns_assist=True, domain=dns.zone)
    work_off()

    server_name = f"exchange.{dns.zone}"
    platform.refresh_from_db()
    assert dns.served(server_name, "A") == {platform.ipv4}
    assert dns.served(server_name, "AAAA") == {platform.ipv6}
    assert platform.dns_state == "verified"
    assert platform.state == "certificate_pending"

    [dcv] = mailbox.with_subject("Domain Control Validation")
    assert dcv["Subject"] == (
        f"ORDER #{platform.order_number} - Domain Control Validation for {server_name}"
    )
    assert dcv["To"] == f"hostmaster@{dns.zone}"
    page = paste_code(client, dcv)
    assert "Le code est valide" in page  # the account is French, and so are its pages

    platform.refresh_from_db()
    assert platform.state == "finalising"
    assert platform.due_at > timezone.now()
    home = client.get("/").content.decode()
    assert platform.service not in home  # hidden while finalising, as the guide says

    finish_finalisation()
    platform.refresh_from_db()
    assert platform.state == "ready"
    [ready] = mailbox.with_subject("est prêt")
    assert ready["Subject"] == (
        f"[xx-70000-ovh] Votre service Private Exchange {platform.service} est prêt !"
    )
    body = text_body(ready)
    assert f"https://{server_name}/owa" in body
    assert "Attention" not in body  # DNS verified: no warning
    assert platform.certificate.not_after.strftime("%d/%m/%Y") in body
    home = client.get("/").content.decode()
    assert platform.service in home and f"https://{server_name}/owa" in home

    kinds = list(Email.objects.order_by("created_at").values_list("kind", flat=True))
    assert kinds == ["delivery", "dcv", "ready"]
    assert len(mailbox.messages) == 3


def test_manual_dns_path_emails_the_records_and_checks_them(dns, mailbox):
    account = AccountFactory(language="en")
    platform = platform_order(account=account, actor="test")
    work_off()
    client = configure(platform, dns_assist=False, domain=dns.zone)
    work_off()
    platform.refresh_from_db()
    server_name = f"exchange.{dns.zone}"

    [instructions] = mailbox.with_subject("DNS records to create")
    body = text_body(instructions)
    name = f"Name: {server_name} (or, in the zone's editor: exchange)"
    assert f"{name}   Type: A   Value: {platform.ipv4}   TTL: 3600" in body
    assert f"{name}   Type: AAAA   Value: {platform.ipv6}   TTL: 3600" in body
    assert platform.dns_state == "mismatch"
    status = client.get(f"/platforms/{platform.service}/").content.decode()
    assert status.count("Not found yet") == 3  # the DNS track and both records
    assert dns.served(server_name, "A") == set()  # the portal wrote nothing

    dns.set_records(server_name, "A", [platform.ipv4])
    dns.set_records(server_name, "AAAA", ["2001:db8:ffff::1"])
    refused = client.post(f"/platforms/{platform.service}/check-dns/", follow=True)
    assert "checked a few seconds ago" in refused.content.decode()
    Platform.objects.filter(pk=platform.pk).update(dns_checked_at=None)  # seconds later
    client.post(f"/platforms/{platform.service}/check-dns/")
    platform.refresh_from_db()
    assert platform.dns_state == "mismatch"
    status = client.get(f"/platforms/{platform.service}/").content.decode()
    assert "2001:db8:ffff::1" in status and "Wrong" in status and "✓ OK" in status

    dns.set_records(server_name, "AAAA", [platform.ipv6])
    Platform.objects.filter(pk=platform.pk).update(dns_checked_at=None)
    client.post(f"/platforms/{platform.service}/check-dns/")
    platform.refresh_from_db()
    assert platform.dns_state == "verified"
    assert not Job.objects.filter(platform=platform, kind="dns_check", status="pending").exists()


def test_dns_instructions_give_the_relative_name_in_french_too(dns, mailbox):
    platform = platform_order(account=AccountFactory(language="fr"), actor="test")
    work_off()
    configure(platform, dns_assist=False, domain=dns.zone)
    work_off()

    [instructions] = mailbox.with_subject("enregistrements DNS à créer")
    name = f"Nom : exchange.{dns.zone} (ou, dans l'éditeur de la zone : exchange)"
    body = text_body(instructions)
    assert f"{name}   Type : A   Valeur" in body and f"{name}   Type : AAAA   Valeur" in body
    rows = re.findall(r"<tr><td style=\"border-top[^>]*>(.*?)</td>", html_body(instructions))
    assert len(rows) == 2
    for row in rows:
        cell = html.unescape(re.sub(r"<[^>]+>", " ", row))
        assert " ".join(cell.split()) == (
            f"exchange.{dns.zone} ou, dans l'éditeur de la zone : exchange"
        )


def test_ready_email_warns_when_records_are_missing(dns, mailbox):
    account = AccountFactory(language="en")
    platform = platform_order(account=account, actor="test")
    work_off()
    client = configure(platform, dns_assist=False, domain=dns.zone)
    work_off()
    [dcv] = mailbox.with_subject("Domain Control Validation")
    paste_code(client, dcv)
    finish_finalisation()

    [ready] = mailbox.with_subject("is ready!")
    body = text_body(ready)
    assert "Warning: the DNS records" in body
    assert f"A exchange.{dns.zone}: missing" in body
    assert "Next step: add your first domain" in body


def test_wrong_tsig_secret_sets_dns_error_in_words(dns, mailbox, settings):
    settings.DNS_TSIG_SECRET = "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldA=="
    account = AccountFactory(zones=[dns.zone])
    platform = platform_order(account=account, actor="test")
    work_off()
    client = configure(platform, dns_assist=True, domain=dns.zone)
    work_off()
    platform.refresh_from_db()
    assert platform.dns_state == "error"
    assert "TSIG" in platform.dns_message
    assert platform.state == "certificate_pending"  # DNS never blocks the certificate
    page = client.get(f"/platforms/{platform.service}/").content.decode()
    assert "DNS Assist n'a pas pu écrire les enregistrements" in page  # a French account


def test_dns_server_down_is_retried_then_error(dns, mailbox, settings):
    settings.JOB_MAX_ATTEMPTS = 3
    account = AccountFactory(zones=[dns.zone])
    platform = platform_order(account=account, actor="test")
    work_off()
    configure(platform, dns_assist=True, domain=dns.zone)
    dns.stop()
    for _ in range(3):
        Job.objects.filter(kind="dns_assist", status="pending").update(due_at=timezone.now())
        work_off()
    job = Job.objects.get(kind="dns_assist")
    platform.refresh_from_db()
    assert job.attempts == 3 and job.status == "failed"
    assert platform.dns_state == "error"
    assert "did not answer" in platform.dns_message or "refused" in platform.dns_message


def test_finalisation_run_twice_sends_one_ready_email(dns, mailbox):
    from provisioning.services import platform_make_ready
    from provisioning.tasks import dispatch_due_jobs, run_job

    account = AccountFactory(zones=[dns.zone], language="en")
    platform = platform_order(account=account, actor="test")
    work_off()
    client = configure(platform, dns_assist=True, domain=dns.zone)
    work_off()
    paste_code(client, mailbox.with_subject("Domain Control Validation")[0])
    finish_finalisation()
    job = Job.objects.get(kind="finalise")

    run_job(job.pk)  # a redelivered message
    platform_make_ready(platform_id=platform.pk)  # a second sweeper
    Job.objects.filter(pk=job.pk).update(status="pending", dispatched_at=None)
    dispatch_due_jobs()  # beat finds it owed again (eager: runs it)
    work_off()

    assert Email.objects.filter(kind="ready").count() == 1
    assert len(mailbox.with_subject("is ready!")) == 1
    assert platform.events.filter(kind="ready").count() == 1


def test_operator_retry_resumes_the_failed_stage(dns, mailbox, settings):
    from provisioning.services import platform_fail, platform_retry

    platform = platform_order(account=AccountFactory(), actor="test")
    platform_fail(platform_id=platform.pk, reason="Broker exploded")
    work_off()
    platform.refresh_from_db()
    assert platform.state == "failed" and platform.failed_from == "ordered"
    assert not mailbox.messages

    platform_retry(platform_id=platform.pk, actor="staff:olga")
    work_off()
    platform.refresh_from_db()
    assert platform.state == "awaiting_setup"
    assert len(mailbox.wait_for(1)) == 1
    assert platform.events.filter(kind="ordered", actor="staff:olga").exists()


def test_operator_retry_runs_a_stage_waiting_out_its_backoff(dns, mailbox, settings):
    from provisioning.services import platform_retry

    settings.PLATFORM_IPV4_POOL = ["192.0.2.10/32"]
    account = AccountFactory()
    platform_order(account=account, actor="test")
    work_off()
    second = platform_order(account=account, actor="test")
    work_off()  # the pool is exhausted: the delivery waits out its backoff
    job = Job.objects.get(platform=second)
    assert job.status == "pending" and job.attempts == 1 and job.due_at > timezone.now()

    settings.PLATFORM_IPV4_POOL = ["192.0.2.10/31"]
    platform_retry(platform_id=second.pk, actor="staff:olga")
    work_off()
    second.refresh_from_db()
    assert second.state == "awaiting_setup"
    assert second.events.filter(kind="retried", actor="staff:olga").exists()
    assert Job.objects.filter(platform=second).count() == 1


def test_retry_is_refused_where_the_customer_has_to_act(dns, mailbox):
    from provisioning.errors import NotAllowed
    from provisioning.services import platform_retry

    platform = platform_order(account=AccountFactory(), actor="test")
    work_off()
    with pytest.raises(NotAllowed, match="customer has to act"):
        platform_retry(platform_id=platform.pk, actor="staff:olga")


def test_check_now_before_setup_changes_nothing_and_dns_assist_then_writes(dns, mailbox):
    """Issue 10.8: a check asked before the server name is chosen is refused and leaves the
    DNS track alone; DNS Assist, chosen afterwards, writes the records."""
    account = AccountFactory(zones=[dns.zone])
    platform = platform_order(account=account, actor="test")
    work_off()
    client = Client()
    client.force_login(account.users.get())
    page = client.post(f"/platforms/{platform.service}/check-dns/", follow=True)
    assert "Le nom du serveur n'est pas encore choisi" in html.unescape(page.content.decode())
    platform.refresh_from_db()
    assert (platform.state, platform.dns_state, platform.dns_checked_at) == (
        "awaiting_setup",
        "pending",
        None,
    )
    assert not platform.jobs.filter(kind="dns_check").exists()
    assert not platform.events.filter(kind__startswith="dns_").exists()

    configure(platform, dns_assist=True, domain=dns.zone)
    work_off()
    platform.refresh_from_db()
    assert dns.served(f"exchange.{dns.zone}", "A") == {platform.ipv4}
    assert dns.served(f"exchange.{dns.zone}", "AAAA") == {platform.ipv6}
    assert platform.dns_state == "verified"
    assert platform.jobs.get(kind="dns_assist").status == "done"


def test_dns_assist_writes_after_a_check_found_nothing(dns, mailbox):
    """Issue 10.8: the customer checks before DNS Assist's job has run (the records are
    missing: mismatch); the job still writes them, it does not end done without."""
    account = AccountFactory(zones=[dns.zone])
    platform = platform_order(account=account, actor="test")
    work_off()
    client = configure(platform, dns_assist=True, domain=dns.zone)
    client.post(f"/platforms/{platform.service}/check-dns/")
    platform.refresh_from_db()
    assert platform.dns_state == "mismatch"
    assert platform.jobs.get(kind="dns_assist").status == "pending"

    work_off()
    platform.refresh_from_db()
    assert dns.served(f"exchange.{dns.zone}", "A") == {platform.ipv4}
    assert dns.served(f"exchange.{dns.zone}", "AAAA") == {platform.ipv6}
    assert platform.events.filter(kind="dns_assisted").exists()
    assert platform.dns_state == "verified"
