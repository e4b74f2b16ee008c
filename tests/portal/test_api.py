import json

import pytest

from provisioning.models import Platform
from tests.factories import AccountFactory
from tests.helpers import work_off

pytestmark = pytest.mark.django_db
TOKEN = "order-api-secret-token"


@pytest.fixture(autouse=True)
def api_token(settings):
    settings.ORDER_API_TOKEN = TOKEN


def post_order(client, body, token=TOKEN, content_type="application/json"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/api/orders/", data, content_type=content_type, headers=headers)


def test_order_is_placed_and_read_back(client):
    AccountFactory(nic="xx-11111-ovh")
    response = post_order(client, {"account": "xx-11111-ovh"})
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "ordered"
    platform = Platform.objects.get(service=body["service"])
    assert platform.account.nic == "xx-11111-ovh"

    work_off()
    read = client.get(
        f"/api/orders/{body['service']}/", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert read.status_code == 200
    assert read.json()["service"] == body["service"]
    assert read.json()["state"] == "awaiting_setup"
    assert read.json()["ipv4"] == platform.__class__.objects.get().ipv4


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", ""])
def test_missing_or_wrong_token_is_401(client, token):
    AccountFactory(nic="xx-11111-ovh")
    response = post_order(client, {"account": "xx-11111-ovh"}, token=token)
    assert response.status_code == 401
    assert "error" in response.json()
    assert not Platform.objects.exists()
    assert client.get("/api/orders/pex-anything/").status_code == 401


def test_api_disabled_without_a_configured_token(client, settings):
    settings.ORDER_API_TOKEN = ""
    AccountFactory(nic="xx-11111-ovh")
    assert post_order(client, {"account": "xx-11111-ovh"}, token="").status_code == 401


def test_basic_scheme_is_refused(client):
    response = client.post(
        "/api/orders/",
        "{}",
        content_type="application/json",
        headers={"Authorization": f"Basic {TOKEN}"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ("{not json", "body", "not valid JSON"),
        (b"\xff\xfe", "body", "not valid JSON"),
        ("[1, 2]", "body", "JSON object"),
        ({}, "account", "required"),
        ({"account": 42}, "account", "string"),
        ({"account": ["xx-11111-ovh"]}, "account", "string"),
        ({"account": "xx-99999-ovh"}, "account", "No account"),
    ],
)
def test_bad_input_is_400_naming_the_field(client, body, field, message):
    AccountFactory(nic="xx-11111-ovh")
    response = post_order(client, body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert message in response.json()["error"]
    assert not Platform.objects.exists()


def test_unknown_order_is_404(client):
    response = client.get("/api/orders/pex-nothing/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404


def test_delete_is_not_allowed_on_the_collection(client):
    response = client.delete("/api/orders/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"
