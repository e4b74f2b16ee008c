"""Accounts over the API: created with a login whose password the customer chooses through
the emailed link, read and changed."""

import re

import pytest

from provisioning.models import Account, Zone
from tests.conftest import html_body, text_body
from tests.factories import AccountFactory
from tests.helpers import work_off

pytestmark = pytest.mark.django_db
TOKEN = "order-api-secret-token-of-32-characters"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def api_token(settings):
    settings.ORDER_API_TOKEN = TOKEN


def create(client, body):
    return client.post("/api/accounts/", body, content_type="application/json", headers=AUTH)


def patch(client, nic, body):
    return client.patch(
        f"/api/accounts/{nic}/", body, content_type="application/json", headers=AUTH
    )


@pytest.mark.parametrize(
    ("language", "subject", "button"),
    [
        ("en", "Choose the password of your customer account", "Choose my password"),
        ("fr", "Choisissez le mot de passe de votre compte client", "Choisir"),
    ],
)
def test_a_new_account_chooses_its_password_through_the_emailed_link(
    client, mailbox, language, subject, button
):
    body = {
        "nic": "xx-12345-ovh",
        "email": "owner@example.net",
        "language": language,
        "zones": ["Example.COM", "exämple.net"],
    }
    response = create(client, body)
    assert response.status_code == 201
    assert response.json()["zones"] == ["example.com", "xn--exmple-cua.net"]
    account = Account.objects.get(nic="xx-12345-ovh")
    assert not account.users.get().has_usable_password()

    work_off()
    [email] = mailbox.messages
    assert email["To"] == "owner@example.net"
    assert button in html_body(email)
    assert email["Subject"] == f"[xx-12345-ovh] {subject}"
    link = re.search(r"http\S+/account/set-password/\S+/", text_body(email)).group(0)
    path = link.split("127.0.0.1:8000", 1)[-1]
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    weak = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "abc", "new_password2": "abc"}
    )
    assert weak.status_code == 200
    assert "too short" in weak.content.decode() or "trop court" in weak.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-long-pass-phrase-7", "new_password2": "a-long-pass-phrase-7"},
    )
    assert done.status_code == 302
    assert client.login(username="xx-12345-ovh", password="a-long-pass-phrase-7")
    assert client.get(path, follow=True).context["validlink"] is False  # used once


def test_an_account_is_read_and_changed(client, mailbox):
    AccountFactory(nic="xx-1-ovh", email="a@example.net", language="fr", zones=["example.com"])
    read = client.get("/api/accounts/xx-1-ovh/", headers=AUTH)
    assert (read.status_code, read.json()["zones"]) == (200, ["example.com"])
    changed = patch(client, "xx-1-ovh", {"email": "b@example.net", "zones": ["example.org"]})
    assert changed.status_code == 200
    assert changed.json()["email"] == "b@example.net"
    assert changed.json()["language"] == "fr"
    assert list(Zone.objects.values_list("name", flat=True)) == ["example.org"]
    assert client.get("/api/accounts/xx-2-ovh/", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"zones": ["taken.example"]}, 409, "zones", "another account"),
        ({"zones": ["not a domain"]}, 400, "zones", "spaces"),
        ({"email": "nobody"}, 400, "email", "valid e-mail"),
        ({"language": "de"}, 400, "language", ""),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(client, body, status, field, words):
    AccountFactory(nic="xx-9-ovh", zones=["taken.example"])
    AccountFactory(nic="xx-1-ovh", email="a@example.net", zones=["example.com"])
    response = patch(client, "xx-1-ovh", body)
    assert response.status_code == status
    assert response.json()["field"] == field
    assert words in response.json()["error"]
    account = Account.objects.get(nic="xx-1-ovh")
    assert account.email == "a@example.net"
    assert list(account.zones.values_list("name", flat=True)) == ["example.com"]


def test_an_existing_nic_is_409(client, mailbox):
    AccountFactory(nic="xx-1-ovh")
    response = create(client, {"nic": "xx-1-ovh", "email": "a@example.net"})
    assert (response.status_code, response.json()["field"]) == (409, "nic")
    response = create(client, {"nic": "Not A Nic", "email": "a@example.net"})
    assert (response.status_code, response.json()["field"]) == (400, "nic")
    assert not mailbox.messages
