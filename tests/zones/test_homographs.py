"""Mixed-script labels (UTS #39, "highly restrictive") are refused wherever a domain name
is typed: the customer's setup form and the zones operators add in admin."""

import html

import idna
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from provisioning import links
from provisioning.models import Platform, Zone
from tests.factories import AccountFactory
from tests.helpers import delivered_platform
from zones.names import InvalidDomainName, normalise_domain

CYRILLIC_A = "\u0430"
HOMOGRAPH = f"ex{CYRILLIC_A}mple.org"  # looks like example.org


@pytest.mark.parametrize(
    "name",
    [
        HOMOGRAPH,
        idna.encode(HOMOGRAPH).decode(),  # typed as its A-label
        "p\u0430ypal.com",
        "\u03bfpenai.com",  # Greek omicron
        "\u043f\u0440\u0438\u043c\u0435\u0440latin.com",  # Cyrillic then Latin in one label
    ],
)
def test_a_label_mixing_scripts_is_refused(name):
    with pytest.raises(InvalidDomainName) as refused:
        normalise_domain(name)
    assert "several scripts" in str(refused.value)


def test_the_message_names_the_scripts_and_the_a_label():
    with pytest.raises(InvalidDomainName) as refused:
        normalise_domain(HOMOGRAPH)
    message = str(refused.value)
    assert "Latin" in message and "Cyrillic" in message
    assert "xn--exmple-4nf" in message


@pytest.mark.parametrize(
    ("name", "a_labels"),
    [
        ("exemple-café.fr", "xn--exemple-caf-lbb.fr"),
        ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("παράδειγμα.gr", "xn--hxajbheg2az3al.gr"),
        ("例え.jp", "xn--r8jz45g.jp"),  # Han + Hiragana: Japanese
        ("日本語ドメイン.jp", None),  # Han + Katakana
        ("한국어.kr", None),
        ("bücher2024-shop.de", None),  # digits and hyphens are Common
        ("xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
    ],
)
def test_single_script_names_are_accepted(name, a_labels):
    result = normalise_domain(name)
    if a_labels:
        assert result == a_labels


@pytest.mark.django_db
def test_the_setup_form_refuses_it_on_the_field(mailbox):
    account = AccountFactory(language="en")
    platform = delivered_platform(account)
    client = Client()
    client.force_login(account.users.get())
    response = client.post(
        f"/setup/{links.setup_token(platform)}/",
        {
            "service": platform.service,
            "subdomain": "mail",
            "domain": HOMOGRAPH,
            "validation_email": "admin",
        },
    )
    assert response.status_code == 400
    assert "several scripts" in html.unescape(response.content.decode())
    assert Platform.objects.get(pk=platform.pk).state == "awaiting_setup"


@pytest.mark.django_db
def test_a_zone_added_in_admin_is_checked_like_the_customers(client):
    account = AccountFactory(nic="xx-77777-ovh")
    client.force_login(
        get_user_model().objects.create_superuser("olga", "olga@hoster.example", "pw")
    )
    url = f"/admin/provisioning/account/{account.pk}/change/"

    def save_with_zone(name: str):
        return client.post(
            url,
            {
                "nic": account.nic,
                "email": account.email,
                "language": account.language,
                "users": [user.pk for user in account.users.all()],
                "zones-TOTAL_FORMS": "1",
                "zones-INITIAL_FORMS": "0",
                "zones-MIN_NUM_FORMS": "0",
                "zones-MAX_NUM_FORMS": "1000",
                "zones-0-name": name,
                "zones-0-account": str(account.pk),
                "_save": "Save",
            },
        )

    refused = save_with_zone(HOMOGRAPH)
    assert refused.status_code == 200
    assert "several scripts" in html.unescape(refused.content.decode())
    assert not Zone.objects.exists()

    refused = save_with_zone("bad..zone")
    assert "empty labels" in html.unescape(refused.content.decode())
    assert not Zone.objects.exists()

    assert save_with_zone("  Exemple-Café.FR. ").status_code == 302
    assert Zone.objects.get().name == "xn--exemple-caf-lbb.fr"
