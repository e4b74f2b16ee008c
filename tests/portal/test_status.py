"""The platform's status page as the customer reads it: the timeline agrees with the DNS
table, and each waiting step says what to do and how long it takes."""

import re

import pytest
from django.test import Client

from provisioning.models import Platform
from tests.factories import AccountFactory
from tests.helpers import validating_platform
from tests.portal.test_dcv import code_and_path

pytestmark = pytest.mark.django_db


@pytest.fixture
def dns(bind, settings):
    bind.configure(settings)
    return bind


def status_page(platform: Platform) -> str:
    client = Client()
    client.force_login(platform.account.users.get())
    response = client.get(f"/platforms/{platform.service}/")
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def step(page: str, number: int) -> str:
    """The timeline's step `number` (from 1), its class and its text."""
    return re.findall(r'<li class="(\w+)"[^>]*>(.*?)</li>', page)[number - 1]


def test_dns_step_is_not_done_while_the_records_are_not_found(dns, settings):
    settings.DNS_CHECK_INTERVAL, settings.DNS_CHECK_MAX_INTERVAL = 60, 3600
    platform = validating_platform(AccountFactory(language="en"), domain=dns.zone)
    assert (platform.state, platform.dns_state) == ("certificate_pending", "mismatch")
    page = status_page(platform)

    status, text = step(page, 3)
    assert status == "waiting" and "(waiting for the records)" in text and "done" not in text
    assert step(page, 4)[0] == "current"
    # The records were not found: not created yet, or not seen yet; nothing is "wrong".
    assert 'class="dns-state dns-mismatch">Not found yet</span>' in page
    assert page.count('<td data-label="Status">Not found yet</td>') == 2
    assert "Mismatch" not in page and "Missing" not in page
    assert "first 1 minute after the setup" in page and "(at most 1 hour apart)" in page
    assert "up to 48 hours" in page
    # The full name, and the name relative to the zone for editors that want it.
    assert f"<code>mail.{dns.zone}</code>" in page
    assert "or, in the zone's editor: <code>mail</code>" in page


def test_dns_step_is_done_once_the_records_are_verified(dns):
    platform = validating_platform(AccountFactory(language="en"), domain=dns.zone)
    dns.set_records(platform.server_name, "A", [platform.ipv4])
    dns.set_records(platform.server_name, "AAAA", ["2001:db8:ffff::1"])
    client = Client()
    client.force_login(platform.account.users.get())
    Platform.objects.filter(pk=platform.pk).update(dns_checked_at=None)
    client.post(f"/platforms/{platform.service}/check-dns/")
    page = status_page(platform)
    assert step(page, 3)[0] == "waiting"
    assert 'class="dns-state dns-mismatch">Mismatch</span>' in page  # one record is wrong
    assert "Wrong" in page

    dns.set_records(platform.server_name, "AAAA", [platform.ipv6])
    Platform.objects.filter(pk=platform.pk).update(dns_checked_at=None)
    client.post(f"/platforms/{platform.service}/check-dns/")
    page = status_page(platform)
    assert step(page, 3) == ("done", 'DNS<span class="visually-hidden"> (done)</span>')
    assert "We check them automatically" not in page


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "We check them automatically, first 2 minutes after the setup"),
        ("fr", "Nous les vérifions automatiquement, d'abord 2 minutes après"),
    ],
)
def test_check_spacing_comes_from_the_settings(dns, settings, language, expected):
    settings.DNS_CHECK_INTERVAL, settings.DNS_CHECK_MAX_INTERVAL = 120, 7200
    platform = validating_platform(AccountFactory(language=language), domain=dns.zone)
    page = status_page(platform)
    assert expected in page
    assert {"en": "at most 2 hours apart", "fr": "jusqu'à 2 heures d'intervalle"}[language] in page


@pytest.mark.parametrize(
    ("language", "texts"),
    [
        (
            "en",
            [
                "The validation e-mail has not arrived?",
                "Look in the spam or junk folder of admin@client.example",
                "The address must be a mailbox that exists and receives e-mail",
                "To use another address, choose it below and send a new validation e-mail",
                "the codes of earlier e-mails stop working",
                "not to your account's reference address (ref-{nic}@customer.example)",
            ],
        ),
        (
            "fr",
            [
                "L'e-mail de validation n'est pas arrivé ?",
                "Regardez dans le dossier des indésirables (spam) de admin@client.example",
                "L'adresse doit être une boîte aux lettres qui existe et reçoit des e-mails",
                "Pour utiliser une autre adresse, choisissez-la ci-dessous",
                "les codes des e-mails précédents ne fonctionnent plus",
                "non à l'adresse de référence de votre compte (ref-{nic}@customer.example)",
            ],
        ),
    ],
)
def test_help_when_the_validation_email_does_not_arrive(dns, language, texts):
    platform = validating_platform(AccountFactory(language=language), domain="client.example")
    page = status_page(platform).replace("&#x27;", "'")
    for text in texts:
        assert text.format(nic=platform.account.nic) in page
    # The form that sends it again, to another address if chosen, is right below.
    assert f'action="/platforms/{platform.service}/resend-validation/"' in page


def finalising_platform(language: str, mailbox) -> Platform:
    """A platform whose code was just accepted: being finalised."""
    platform = validating_platform(AccountFactory(language=language), domain="client.example")
    [email] = mailbox.with_subject("Domain Control Validation")
    code, path = code_and_path(email)
    client = Client()
    client.force_login(platform.account.users.get())
    client.post(path, {"code": code})
    platform.refresh_from_db()
    assert platform.state == "finalising"
    return platform


@pytest.mark.parametrize(
    ("language", "delay", "expected"),
    [
        ("en", 60, "this takes up to 1 minute (until about {when} UTC)"),
        ("en", 1800, "this takes up to 30 minutes (until about {when} UTC)"),
        ("en", 14400, "this takes up to 4 hours (until about {when} UTC)"),
        ("fr", 60, "Un délai de 1 minute peut encore être nécessaire"),
        ("fr", 5400, "Un délai de 1 heure 30 minutes peut encore être nécessaire"),
    ],
)
def test_finalisation_says_how_long_never_zero_hours(
    dns, mailbox, settings, language, delay, expected
):
    settings.FINALISATION_DELAY = delay
    platform = finalising_platform(language, mailbox)
    page = status_page(platform)
    assert expected.format(when=platform.due_at.strftime("%Y-%m-%d %H:%M")) in page
    assert "0 hours" not in page and "0 heures" not in page


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "The platform of order #{order} is being finalised: it will appear here once"),
        ("fr", "La plateforme de la commande n° {order} est en cours de finalisation"),
    ],
)
def test_home_shows_a_line_for_a_platform_being_finalised(dns, mailbox, language, expected):
    platform = finalising_platform(language, mailbox)
    client = Client()
    client.force_login(platform.account.users.get())
    home = " ".join(client.get("/").content.decode().split())
    assert expected.format(order=platform.order_number) in home
    assert f"{platform.due_at:%Y-%m-%d %H:%M} UTC" in home
    # Still kept out of the list, as the guide says: no card, no link to its page.
    assert platform.service not in home
    assert "You have no Private Exchange platform" not in home
    assert "Vous n'avez pas encore de plateforme" not in home.replace("&#x27;", "'")
