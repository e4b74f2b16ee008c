"""The pages of emailed links that cannot be used: each says what the customer can do alone,
leads to the customer space and names the hoster's support (SUPPORT_URL, SUPPORT_EMAIL),
which every customer page's footer shows too."""

import time
from unittest import mock

import pytest
from django.test import Client

from provisioning import links
from tests.factories import AccountFactory
from tests.helpers import delivered_platform

pytestmark = pytest.mark.django_db


@pytest.fixture
def support(settings):
    settings.SUPPORT_URL = "https://help.hoster.example/exchange"
    settings.SUPPORT_EMAIL = "support@hoster.example"


@pytest.fixture
def platform(db):
    return delivered_platform(AccountFactory(language="en"))


def old(make_token, platform, days: int) -> str:
    with mock.patch("django.core.signing.time.time", return_value=time.time() - days * 86400):
        return make_token(platform)


def page_of(response) -> str:
    return " ".join(response.content.decode().split()).replace("&#x27;", "'")


def test_expired_validation_link_leads_to_a_new_validation_email(platform, support):
    path = f"/dcv/{platform.order_number}/{old(links.dcv_token, platform, 31)}/"
    response = Client().get(path)
    assert response.status_code == 410
    page = page_of(response)
    assert "This validation link has expired" in page
    assert "as long as its code, 30 days at most" in page
    assert "send a new validation e-mail: its new link and code replace these" in page
    assert "delivery" not in page  # the advice of the setup link does not belong here
    assert '<a href="/">Go to your customer space</a>' in page
    assert (
        'Still stuck? Contact support: <a href="https://help.hoster.example/exchange">the support'
        ' page</a> or <a href="mailto:support@hoster.example">support@hoster.example</a>.'
    ) in page


def test_changed_validation_link(platform, support):
    token = links.dcv_token(platform)
    response = Client().get(f"/dcv/{platform.order_number}/{token[:-3]}/")
    assert response.status_code == 400
    page = page_of(response)
    assert "This validation link is not valid" in page
    assert "from the latest validation e-mail" in page
    assert '<a href="/">Go to your customer space</a>' in page


def test_expired_setup_link_leads_to_the_customer_space(platform, support):
    response = Client().get(f"/setup/{old(links.setup_token, platform, 31)}/")
    assert response.status_code == 410
    page = page_of(response)
    assert "This setup link has expired" in page
    assert "Setup links are valid for 30 days. You do not need a new e-mail" in page
    assert "has a “Set up the platform” link" in page
    assert '<a href="/">Go to your customer space</a>' in page
    assert "support@hoster.example" in page


def test_changed_setup_link_in_french(platform, support):
    response = Client(headers={"accept-language": "fr"}).get(
        f"/setup/{links.setup_token(platform)[:-3]}/"
    )
    assert response.status_code == 400
    page = page_of(response)
    assert "Ce lien de configuration n'est pas valide" in page
    assert "depuis l'e-mail de livraison" in page
    assert '<a href="/">Aller à votre espace client</a>' in page
    assert (
        'Toujours bloqué ? Contactez le support : <a href="https://help.hoster.example/exchange">'
    ) in page


def test_without_support_settings_no_contact_is_invented(platform, settings):
    settings.SUPPORT_URL = settings.SUPPORT_EMAIL = ""
    page = page_of(Client().get(f"/setup/{old(links.setup_token, platform, 31)}/"))
    assert "Go to your customer space" in page
    assert "support" not in page.lower()
    assert "<footer" not in page


@pytest.mark.parametrize(
    ("url", "email", "expected"),
    [
        ("https://help.example/", "", 'Contact support: <a href="https://help.example/">'),
        ("", "help@example.net", 'Contact support: <a href="mailto:help@example.net">'),
    ],
)
def test_every_customer_page_has_the_support_footer(platform, settings, url, email, expected):
    settings.SUPPORT_URL, settings.SUPPORT_EMAIL = url, email

    def footer(path: str) -> str:
        return page_of(client.get(path)).partition('<footer class="bottom">')[2]

    client = Client()
    assert f"Need help? {expected}" in footer("/login/")
    client.force_login(platform.account.users.get())
    for path in ("/", f"/platforms/{platform.service}/", f"/setup/{links.setup_token(platform)}/"):
        assert f"Need help? {expected}" in footer(path)
