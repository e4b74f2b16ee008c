"""Resending the validation email from the status page is limited per platform and per
account; the page says when the customer may ask again; an operator in admin is not
limited."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.factories import AccountFactory
from tests.helpers import validating_platform, work_off

pytestmark = pytest.mark.django_db
SUBJECT = "Domain Control Validation"


@pytest.fixture
def validating(mailbox, bind, settings):
    bind.configure(settings)
    account = AccountFactory(language="en")
    platform = validating_platform(account, domain="client.example")
    client = Client()
    client.force_login(account.users.get())
    return account, platform, client


def resend(client: Client, platform, *, language: str = "en"):
    return client.post(
        f"/platforms/{platform.service}/resend-validation/",
        {"validation_email": ""},
        headers={"Accept-Language": language},
        follow=True,
    )


def test_resends_stop_at_the_platform_limit(validating, mailbox, settings):
    assert settings.RATELIMITS["dcv_resend"] == (3, 3600)
    _, platform, client = validating
    pages = [resend(client, platform) for _ in range(5)]
    work_off()
    assert len(mailbox.with_subject(SUBJECT)) == 1 + 3

    assert all(page.status_code == 200 for page in pages)
    assert all("is on its way" in page.content.decode() for page in pages[:3])
    refused = pages[3].content.decode()
    assert "is on its way" not in refused
    assert re.search(
        r"You can ask for a new validation e-mail again in [^.]+ \(at \d\d:\d\d UTC\)", refused
    )
    assert 'name="validation_email"' in refused  # still the status page, with its form


def test_the_account_limit_counts_all_its_platforms(validating, mailbox, settings):
    settings.RATELIMITS = {**settings.RATELIMITS, "dcv_resend_account": (4, 86400)}
    account, first, client = validating
    second = validating_platform(account, domain="other.example")
    for _ in range(3):
        resend(client, first)
    pages = [resend(client, second) for _ in range(3)]
    work_off()
    assert len(mailbox.with_subject(SUBJECT)) == 2 + 4
    assert "again in" in pages[1].content.decode()


def test_the_message_is_in_french(validating, mailbox):
    account, platform, client = validating
    account.language = "fr"
    account.save()
    for _ in range(3):
        resend(client, platform, language="fr")
    page = resend(client, platform, language="fr").content.decode()
    assert "Vous pourrez demander un nouvel e-mail de validation dans" in page


def test_a_stranger_cannot_use_up_the_owners_resends(validating, mailbox):
    _, platform, client = validating
    stranger = Client()
    stranger.force_login(AccountFactory().users.get())
    for _ in range(5):
        response = stranger.post(f"/platforms/{platform.service}/resend-validation/", {})
        assert response.status_code == 404
    assert "is on its way" in resend(client, platform).content.decode()


def test_an_operator_in_admin_is_not_limited(validating, mailbox):
    _, platform, client = validating
    for _ in range(4):
        resend(client, platform)
    operator = Client()
    operator.force_login(
        get_user_model().objects.create_superuser("olga", "olga@hoster.example", "pw")
    )
    for _ in range(2):
        response = operator.post(
            f"/admin/provisioning/platform/{platform.pk}/resend/", {"kind": "dcv"}
        )
        assert response.status_code == 302
    work_off()
    assert len(mailbox.with_subject(SUBJECT)) == 1 + 3 + 2
