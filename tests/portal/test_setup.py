"""Step 2 of the guide: the delivery email's link, the login, the form, the confirmation."""

import html
import re
import time
from unittest import mock

import pytest
from django.test import Client

from provisioning import links
from provisioning.models import Platform, PlatformEvent
from provisioning.services import platform_order
from tests.conftest import text_body
from tests.factories import PASSWORD, AccountFactory
from tests.helpers import delivered_platform, work_off

pytestmark = pytest.mark.django_db


def setup_path(platform) -> str:
    return f"/setup/{links.setup_token(platform)}/"


def form_data(platform, **overrides) -> dict:
    data = {
        "service": platform.service,
        "subdomain": "exchange",
        "domain": "example.com",
        "validation_email": "postmaster",
        "dns_assist": "",
    }
    data.update(overrides)
    return data


def assert_unchanged(platform) -> None:
    fresh = Platform.objects.get(pk=platform.pk)
    assert fresh.state == "awaiting_setup"
    assert fresh.server_name == "" and fresh.validation_email == ""
    assert not PlatformEvent.objects.filter(platform=platform, kind="configured").exists()


def test_delivery_link_through_login_to_confirmation(mailbox):
    account = AccountFactory(nic="xx-22222-ovh", zones=["example.com"])
    platform_order(account=account, actor="test")
    work_off()
    [message] = mailbox.wait_for(1)
    url = re.search(r"http://\S+/setup/\S+/", text_body(message)).group(0)
    path = url.removeprefix("http://127.0.0.1:8000")

    client = Client()
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/setup/")
    login = client.post(
        response["Location"], {"username": "xx-22222-ovh", "password": PASSWORD}, follow=True
    )
    page = login.content.decode()
    assert "Initialisation de votre plateforme" in page  # a French account: French pages
    assert '<html lang="fr">' in page
    assert 'name="domain"' in page and "admin@" in page and "postmaster@" in page

    platform = Platform.objects.get()
    done = client.post(path, form_data(platform, dns_assist="on"), follow=True)

    page = done.content.decode()
    assert "La configuration a bien été effectuée" in page
    assert "postmaster@example.com" in page
    assert "https://exchange.example.com/owa" in page
    platform.refresh_from_db()
    assert platform.state == "configured"
    assert platform.server_name == "exchange.example.com"
    assert platform.validation_email == "postmaster@example.com"
    assert platform.dns_assist is True
    event = PlatformEvent.objects.get(platform=platform, kind="configured")
    assert event.actor == "customer:xx-22222-ovh"


@pytest.fixture
def platform(account):
    return delivered_platform(account)


def post(client, platform, **overrides):
    return client.post(setup_path(platform), form_data(platform, **overrides))


def test_validation_addresses_follow_the_typed_domain_without_javascript(customer_client, platform):
    response = post(customer_client, platform, domain="exemple.fr", validation_email="")
    page = response.content.decode()
    for local in ("admin", "administrator", "webmaster", "hostmaster", "postmaster"):
        assert f"{local}@exemple.fr" in page
    assert "Ce champ est obligatoire" in page
    assert_unchanged(platform)


@pytest.mark.parametrize(
    ("domain", "message"),
    [  # the accounts are French (tests/factories.py): the messages are the French ones
        ("exa mple.com", "ne peut pas contenir d'espace"),
        ("-bad.com", "ne peut ni commencer ni finir par un tiret"),
        ("under_score.com", "ne peut contenir que des lettres, des chiffres et des tirets"),
        ("localhost", "nom de domaine complet"),
        ("a" * 64 + ".com", "au plus 63 caractères"),
        (".".join(["a" * 60] * 4) + ".com", "au plus 253 caractères"),
        ("example..com", "partie vide"),
        ("", "Ce champ est obligatoire"),
    ],
)
def test_malformed_domains_are_refused_on_the_field(customer_client, platform, domain, message):
    response = post(customer_client, platform, domain=domain)
    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())
    assert_unchanged(platform)


def test_server_name_over_253_characters_is_refused(customer_client, platform):
    domain = ".".join(["b" * 62] * 4)[:249] + ".com"  # fits alone, not with the sub-domain
    response = post(customer_client, platform, domain=domain, subdomain="webmail")
    assert "au plus 253 caractères" in response.content.decode()
    assert_unchanged(platform)


def test_idn_is_stored_as_a_labels_and_shown_as_u_labels(customer_client, platform):
    response = post(customer_client, platform, domain="Exemple-Café.FR.", validation_email="admin")
    assert response.status_code == 302
    platform.refresh_from_db()
    assert platform.domain == "xn--exemple-caf-lbb.fr"
    assert platform.server_name == "exchange.xn--exemple-caf-lbb.fr"
    assert platform.validation_email == "admin@xn--exemple-caf-lbb.fr"
    page = customer_client.get(setup_path(platform), follow=True).content.decode()
    assert "exchange.exemple-café.fr" in page
    assert "admin@exemple-café.fr" in page


def test_case_and_trailing_dot_are_normalised(customer_client, platform):
    post(customer_client, platform, domain="  Example.COM. ")
    platform.refresh_from_db()
    assert platform.server_name == "exchange.example.com"


def test_domain_already_used_by_another_platform(customer_client, platform, account):
    """Used: held by a platform that proved control of it (issue 10.1)."""
    other = delivered_platform(AccountFactory())
    other_client = Client()
    other_client.force_login(other.account.users.get())
    assert post(other_client, other).status_code == 302
    Platform.objects.filter(pk=other.pk).update(state="ready")  # its certificate issued

    response = post(customer_client, platform)
    assert "déjà utilisé par une autre plateforme" in response.content.decode()
    assert_unchanged(platform)


@pytest.mark.parametrize("address", ["attacker", "attacker@evil.example", "postmaster@example.com"])
def test_address_outside_the_offered_list(customer_client, platform, address):
    response = post(customer_client, platform, validation_email=address)
    assert "Sélectionnez un choix valide" in response.content.decode()
    assert_unchanged(platform)


def test_subdomain_outside_the_list(customer_client, platform):
    response = post(customer_client, platform, subdomain="evil")
    assert "Sélectionnez un choix valide" in response.content.decode()
    assert_unchanged(platform)


def test_dns_assist_on_a_domain_not_managed_by_the_account(platform):
    client = Client()
    client.force_login(platform.account.users.get())
    platform.account.zones.create(name="mine.example")
    response = post(client, platform, domain="example.com", dns_assist="on")
    page = html.unescape(response.content.decode())
    assert "DNS Assist n'est disponible que pour les noms de domaine dont la zone" in page
    assert "mine.example" in page
    assert_unchanged(platform)


def test_dns_assist_accepted_under_a_parent_zone(platform):
    client = Client()
    client.force_login(platform.account.users.get())
    platform.account.zones.create(name="example.com")
    post(client, platform, domain="paris.example.com", dns_assist="on")
    platform.refresh_from_db()
    assert platform.state == "configured" and platform.dns_assist


def test_dns_assist_on_another_accounts_zone(platform):
    AccountFactory(zones=["example.com"])
    client = Client()
    client.force_login(platform.account.users.get())
    response = post(client, platform, dns_assist="on")
    assert "DNS Assist n'est disponible que" in html.unescape(response.content.decode())
    assert_unchanged(platform)


def test_changed_hidden_field(customer_client, platform):
    response = post(customer_client, platform, service="pex-someone")
    assert "Ce formulaire concerne une autre plateforme" in response.content.decode()
    assert_unchanged(platform)


def test_tampered_link_gets_an_explanation(customer_client, platform):
    token = links.setup_token(platform)
    response = customer_client.get(f"/setup/{token[:-2]}xx/")
    assert response.status_code == 400
    assert "Ce lien de configuration n'est pas valide" in html.unescape(response.content.decode())


def test_expired_link_gets_an_explanation(customer_client, platform):
    thirty_one_days_ago = time.time() - 31 * 24 * 3600
    with mock.patch("django.core.signing.time.time", return_value=thirty_one_days_ago):
        token = links.setup_token(platform)
    response = customer_client.get(f"/setup/{token}/")
    assert response.status_code == 410
    assert "Ce lien de configuration a expiré" in response.content.decode()
    assert customer_client.get(setup_path(platform)).status_code == 200  # a fresh one works


def test_another_accounts_link_is_404(platform):
    stranger = AccountFactory()
    client = Client()
    client.force_login(stranger.users.get())
    assert client.get(setup_path(platform)).status_code == 404
    assert client.post(setup_path(platform), form_data(platform)).status_code == 404
    assert_unchanged(platform)


def test_second_submission_shows_the_state_and_changes_nothing(customer_client, platform):
    post(customer_client, platform)
    response = post(customer_client, platform, domain="other.example", subdomain="mail")
    assert response.status_code == 302
    page = customer_client.get(response["Location"]).content.decode()
    assert "exchange.example.com" in page and "Configurée" in page
    platform.refresh_from_db()
    assert platform.server_name == "exchange.example.com"
    assert PlatformEvent.objects.filter(platform=platform, kind="configured").count() == 1


def test_post_without_csrf_token_is_refused(platform):
    client = Client(enforce_csrf_checks=True)
    client.force_login(platform.account.users.get())
    response = client.post(setup_path(platform), form_data(platform))
    assert response.status_code == 403
    assert "Rien n'a été modifié" in html.unescape(response.content.decode())
    assert_unchanged(platform)
