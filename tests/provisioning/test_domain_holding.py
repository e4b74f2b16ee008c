"""Issue 10.1: choosing a name proves nothing. A domain in a zone another account manages
is refused; a domain nobody manages may wait for validation on several platforms, the
first whose certificate is issued holds it, the others are told and choose again; the
database never lets two validated platforms hold one name."""

import html
import re

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from provisioning import links
from provisioning.models import Platform
from provisioning.services import platform_configure
from tests.conftest import text_body
from tests.factories import AccountFactory
from tests.helpers import delivered_platform, validating_platform, work_off

pytestmark = pytest.mark.django_db

DOMAIN = "client.example"  # a zone no account manages


@pytest.fixture
def dns(bind, settings):
    bind.configure(settings)
    return bind


def logged_in(platform) -> Client:
    client = Client()
    client.force_login(platform.account.users.get())
    return client


def setup_post(client, platform, domain: str):
    return client.post(
        f"/setup/{links.setup_token(platform)}/",
        {
            "service": platform.service,
            "subdomain": "mail",
            "domain": domain,
            "validation_email": "admin",
            "dns_assist": "",
        },
    )


def paste_code(client, message):
    body = text_body(message)
    code = re.search(r"^\s{4}(\S+)\s*$", body, re.M).group(1)
    path = re.search(r"https?://[^/\s]+(/dcv/\S+/)", body).group(1)
    return client.post(path, {"code": code})


def dcv_email_of(mailbox, platform):
    [message] = [
        m
        for m in mailbox.with_subject("Domain Control Validation")
        if f"ORDER #{platform.order_number} " in m["Subject"]
    ]
    return message


def test_a_domain_in_a_zone_another_account_manages_is_refused(mailbox):
    AccountFactory(zones=["example.com"])
    platform = delivered_platform(AccountFactory())
    response = setup_post(logged_in(platform), platform, "paris.example.com")
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "La zone DNS de ce nom de domaine est gérée par un autre compte client" in page
    platform.refresh_from_db()
    assert (platform.state, platform.domain, platform.server_name) == ("awaiting_setup", "", "")
    assert not mailbox.with_subject("Domain Control Validation")


def test_the_service_refuses_it_too_and_an_own_deeper_zone_is_the_accounts(mailbox):
    AccountFactory(zones=["example.com"])
    account = AccountFactory(zones=["paris.example.com"])
    platform = delivered_platform(account)
    with pytest.raises(Exception, match="managed by another customer account"):
        platform_configure(
            platform_id=platform.pk,
            actor="test",
            subdomain="mail",
            domain="lyon.example.com",
            validation_email="admin@lyon.example.com",
            dns_assist=False,
        )
    platform_configure(
        platform_id=platform.pk,
        actor="test",
        subdomain="mail",
        domain="paris.example.com",
        validation_email="admin@paris.example.com",
        dns_assist=True,
    )
    platform.refresh_from_db()
    assert platform.state == "configured" and platform.domain == "paris.example.com"


def test_the_first_platform_validated_holds_the_name_and_the_others_choose_again(dns, mailbox):
    first = validating_platform(AccountFactory(), domain=DOMAIN)
    second = delivered_platform(AccountFactory())
    second_client = logged_in(second)
    assert setup_post(second_client, second, DOMAIN).status_code == 302  # proves nothing yet
    work_off()
    second.refresh_from_db()
    assert first.state == second.state == "certificate_pending"

    page = paste_code(logged_in(first), dcv_email_of(mailbox, first)).content.decode()
    assert "Le code est valide" in page
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == "finalising"
    assert (second.state, second.domain, second.server_name) == ("awaiting_setup", DOMAIN, "")
    assert second.certificate is None and not second.jobs.filter(status="pending").exists()
    assert second.events.filter(kind="awaiting_setup", message__contains="held by another")

    # Told clearly: the code from its validation email, and its page.
    taken = "Une autre plateforme a prouvé la première le contrôle de ce nom de domaine"
    response = paste_code(second_client, dcv_email_of(mailbox, second))
    assert response.status_code == 400
    assert taken in html.unescape(response.content.decode())
    page = html.unescape(second_client.get(f"/platforms/{second.service}/").content.decode())
    assert taken in page and links.setup_token(second) in page

    # The name is held now; another is free to choose.
    response = setup_post(second_client, second, DOMAIN)
    assert "déjà utilisé par une autre plateforme" in html.unescape(response.content.decode())
    assert setup_post(second_client, second, "other.example").status_code == 302
    work_off()
    second.refresh_from_db()
    assert second.state == "certificate_pending" and second.server_name == "mail.other.example"
    subjects = [m["Subject"] for m in mailbox.with_subject("Domain Control Validation")]
    assert f"ORDER #{second.order_number} - Domain Control Validation for mail.other.example" in (
        subjects
    )


def test_a_platform_busy_when_the_name_was_taken_finds_out_at_its_next_step(dns, mailbox):
    first = validating_platform(AccountFactory(), domain=DOMAIN)
    second = validating_platform(AccountFactory(), domain=DOMAIN)
    # The first got there while the second was locked elsewhere: nobody sent it back.
    Platform.objects.filter(pk=first.pk).update(state="ready")

    response = paste_code(logged_in(second), dcv_email_of(mailbox, second))
    assert "Une autre plateforme a prouvé la première" in html.unescape(response.content.decode())
    second.refresh_from_db()
    assert second.state == "awaiting_setup" and second.certificate is None


def test_the_database_lets_one_validated_platform_hold_a_name(dns, mailbox):
    first = validating_platform(AccountFactory(), domain=DOMAIN)
    second = validating_platform(AccountFactory(), domain=DOMAIN)
    Platform.objects.filter(pk=first.pk).update(state="ready")
    with pytest.raises(IntegrityError), transaction.atomic():
        Platform.objects.filter(pk=second.pk).update(state="finalising")
    with pytest.raises(IntegrityError), transaction.atomic():
        Platform.objects.filter(pk=second.pk).update(state="failed", failed_from="ready")
    Platform.objects.filter(pk=first.pk).update(state="cancelled")
    Platform.objects.filter(pk=second.pk).update(state="finalising")  # freed
