import re

import pytest
from django.test import override_settings

from provisioning.models import Platform, PlatformEvent
from provisioning.services import platform_order
from tests.conftest import html_body, text_body
from tests.factories import AccountFactory
from tests.helpers import work_off

pytestmark = pytest.mark.django_db


def test_delivery_email_is_received_over_smtp_in_french(mailbox):
    account = AccountFactory(nic="xx-11111-ovh", language="fr")
    platform = platform_order(account=account, actor="test")

    work_off()

    [message] = mailbox.wait_for(1)
    assert message["Subject"] == (
        f"[xx-11111-ovh] Votre service Private Exchange {platform.service} "
        "est en cours de livraison !"
    )
    assert message["To"] == account.email
    assert "/setup/" in text_body(message)
    assert "Configurer ma plateforme" in html_body(message)
    platform.refresh_from_db()
    assert platform.state == "awaiting_setup"
    assert platform.ipv4 and platform.ipv6
    assert platform.ipv4 in text_body(message)


def test_english_account_gets_the_english_subject(mailbox):
    account = AccountFactory(language="en")
    platform = platform_order(account=account, actor="test")

    work_off()

    [message] = mailbox.wait_for(1)
    assert message["Subject"] == (
        f"[{account.nic}] Your Private Exchange service {platform.service} is being delivered!"
    )


@override_settings(PORTAL_BASE_URL="https://portal.hoster.example")
def test_setup_link_is_absolute_on_the_base_url(mailbox):
    platform_order(account=AccountFactory(), actor="test")
    work_off()
    [message] = mailbox.wait_for(1)
    assert re.search(r"https://portal\.hoster\.example/setup/[\w:.-]+/", text_body(message))


def test_message_id_is_recorded_and_sent(mailbox):
    platform = platform_order(account=AccountFactory(), actor="test")
    work_off()
    [message] = mailbox.wait_for(1)
    [email] = platform.emails.all()
    assert email.status == "done" and email.sent_at is not None
    assert message["Message-ID"] == email.message_id


def test_each_step_is_an_event_row(mailbox):
    platform = platform_order(account=AccountFactory(), actor="api")
    work_off()
    kinds = list(PlatformEvent.objects.filter(platform=platform).values_list("kind", "actor"))
    assert kinds == [("ordered", "api"), ("awaiting_setup", "system"), ("email_delivery", "system")]


def test_redelivered_job_sends_nothing_twice(mailbox):
    from provisioning.tasks import run_job

    platform = platform_order(account=AccountFactory(), actor="test")
    job = platform.jobs.get()
    run_job(job.pk)
    run_job(job.pk)  # the broker delivers the same message again
    work_off()

    assert len(mailbox.wait_for(1)) == 1
    assert platform.emails.count() == 1
    assert PlatformEvent.objects.filter(platform=platform, kind="awaiting_setup").count() == 1


def test_addresses_are_never_shared():
    account = AccountFactory()
    for _ in range(5):
        platform_order(account=account, actor="test")
    work_off()
    ipv4s = list(Platform.objects.values_list("ipv4", flat=True))
    ipv6s = list(Platform.objects.values_list("ipv6", flat=True))
    assert len(set(ipv4s)) == 5 and len(set(ipv6s)) == 5
    assert None not in ipv4s


@override_settings(PLATFORM_IPV4_POOL=["192.0.2.0/30"])
def test_an_exhausted_pool_fails_the_platform_visibly(mailbox, settings):
    settings.JOB_MAX_ATTEMPTS = 1
    account = AccountFactory()
    first = platform_order(account=account, actor="test")
    second = platform_order(account=account, actor="test")
    third = platform_order(account=account, actor="test")
    work_off()
    states = {p.pk: p for p in Platform.objects.all()}
    assert states[first.pk].state == "awaiting_setup"
    assert states[second.pk].state == "awaiting_setup"
    assert states[third.pk].state == "failed"
    assert "No free address" in states[third.pk].failure_reason
