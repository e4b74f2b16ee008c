"""Every answer of /api/ is JSON: hostile bodies, other content types and methods, unknown
URLs."""

import json

import pytest

from portal.api import MAX_BODY_BYTES
from provisioning.models import Platform
from tests.factories import AccountFactory
from tests.helpers import delivered_platform

pytestmark = pytest.mark.django_db
TOKEN = "order-api-secret-token-of-32-characters"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def api_token(settings):
    settings.ORDER_API_TOKEN = TOKEN


def post(client, body, content_type="application/json"):
    return client.post("/api/orders/", body, content_type=content_type, headers=AUTH)


def assert_json_error(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["error"]
    if field:
        assert body["field"] == field
    assert not Platform.objects.exists()
    return body


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000, '{"account": ' * 50_000, "[" * 5_000 + "]" * 5_000, '{"account": "x"'],
)
def test_bad_json_at_any_depth_is_400(client, body):
    AccountFactory(nic="x")
    assert_json_error(post(client, body[:MAX_BODY_BYTES]), 400, "body")


def test_a_body_over_the_documented_size_is_413(client):
    AccountFactory(nic="xx-11111-ovh")
    body = json.dumps({"account": "xx-11111-ovh", "padding": "x" * 3_000_000})
    error = assert_json_error(post(client, body), 413, "body")
    assert f"{MAX_BODY_BYTES // 1024} KiB" in error["error"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_another_content_type_is_415(client, content_type):
    AccountFactory(nic="xx-11111-ovh")
    response = post(client, '{"account": "xx-11111-ovh"}', content_type=content_type)
    assert_json_error(response, 415, "body")


def test_json_with_a_charset_is_accepted(client):
    AccountFactory(nic="xx-11111-ovh")
    response = post(client, '{"account": "xx-11111-ovh"}', "application/json; charset=utf-8")
    assert response.status_code == 201
    assert response.json()["state"] == "ordered"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("delete", "/api/orders/{service}/", "GET"),
        ("put", "/api/orders/{service}/", "GET"),
        ("post", "/api/orders/{service}/", "GET"),
        ("delete", "/api/orders/", "GET, POST"),
        ("patch", "/api/orders/", "GET, POST"),
    ],
)
def test_other_methods_are_405_with_allow(client, mailbox, method, path, allow):
    platform = delivered_platform(AccountFactory())
    response = getattr(client, method)(path.format(service=platform.service), headers=AUTH)
    assert response.status_code == 405
    assert response["Allow"] == allow
    assert response["Content-Type"] == "application/json"
    assert allow in response.json()["error"]
    assert Platform.objects.get().state == "awaiting_setup"


@pytest.mark.parametrize(
    "path", ["/api/", "/api/nothing/", "/api/orders/pex-a/extra/", "/api/orders"]
)
def test_unknown_urls_are_404_json(client, path):
    response = client.get(path, headers=AUTH)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def test_nul_characters_are_refused_before_the_database(client):
    """PostgreSQL refuses NUL in text: a request holding one gets an answer, not a 500."""
    AccountFactory(nic="xx-11111-ovh")
    assert_json_error(post(client, '{"account": "xx-\\u0000"}'), 400, "body")
    listing = client.get("/api/orders/", {"account": "x\x00y"}, headers=AUTH)
    assert (listing.status_code, listing["Content-Type"]) == (400, "application/json")
    assert client.get("/api/orders/pex-%00/", headers=AUTH).status_code == 404
