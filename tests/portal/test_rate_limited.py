"""The rate-limit page: counts only what the pages say counts, in the customer's language,
with a way back."""

import re

import pytest
from django.test import Client

from certificates.models import CertificateOrder
from provisioning import links
from tests.factories import AccountFactory
from tests.helpers import validating_platform

pytestmark = pytest.mark.django_db
WRONG_CODE = "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"


@pytest.fixture
def validation_page(mailbox, bind, settings):
    bind.configure(settings)
    settings.RATELIMITS = {**settings.RATELIMITS, "dcv": (3, 600)}
    platform = validating_platform(AccountFactory(language="fr"), domain="client.example")
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    client.force_login(platform.account.users.get())
    return platform, client, f"/dcv/{platform.order_number}/{links.dcv_token(platform)}/"


def test_malformed_pastes_do_not_count(validation_page):
    platform, client, path = validation_page
    for paste in ["abc", "", "AAAAA-AAAAA", "!!!!!-?????-AAAAA-AAAAA-AAAAA"] * 3:
        response = client.post(path, {"code": paste})
        assert response.status_code == 400, paste
    statuses = [client.post(path, {"code": WRONG_CODE}).status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    assert CertificateOrder.objects.get(pk=platform.certificate_id).dcv_attempts == 3


def test_the_page_is_translated_and_leads_back(validation_page):
    _, client, path = validation_page
    for _ in range(3):
        client.post(path, {"code": WRONG_CODE})
    response = client.post(path, {"code": WRONG_CODE})
    assert response.status_code == 429
    page = response.content.decode()
    assert "Trop de tentatives" in page
    # Under a minute left in the window, the wait is said in seconds.
    assert re.search(r"Réessayez dans \d+ (secondes?|minutes?)\.", page)
    assert f'href="{path}"' in page and "Revenir à la page" in page
    assert 'href="/"' in page
    assert client.get(path).status_code == 200  # the way back works


def test_a_stranger_cannot_use_up_the_owners_attempts(validation_page):
    platform, client, path = validation_page
    anonymous = Client()
    stranger = Client()
    stranger.force_login(AccountFactory().users.get())
    forged = f"/dcv/{platform.order_number}/forged-token/"
    for _ in range(4):
        anonymous.post(path, {"code": WRONG_CODE})
        stranger.post(forged, {"code": WRONG_CODE})
    assert client.post(path, {"code": WRONG_CODE}).status_code == 400  # counted, not refused
