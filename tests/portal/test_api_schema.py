"""/api/openapi.json against the API itself: Schemathesis generates requests for every
operation (no 5xx, every answer valid against the schema), and every status the schema
documents is reached by a request below."""

import json

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.api.http import MAX_BODY_BYTES
from portal.wsgi import application
from provisioning.services import platform_suspend, platform_terminate
from tests.factories import AccountFactory
from tests.helpers import delivered_platform

pytestmark = pytest.mark.django_db
TOKEN = "order-api-secret-token-of-32-characters"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True)
def api_token(settings):
    settings.ORDER_API_TOKEN = TOKEN
    settings.RATELIMIT_ENABLED = False


@pytest.fixture
def api_schema(db, mailbox):
    """The WSGI application called directly, in the test's transaction: as Django's test
    client does, a request's end must not close the test's database connection."""
    account = AccountFactory(nic="xx-1-ovh", zones=["example.com"])
    delivered_platform(account)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/openapi.json", application)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_keeps_to_its_openapi_description(case):
    case.call_and_validate(headers=AUTH, checks=CHECKS)


def test_the_description_is_openapi_3_1_with_bearer_auth(client):
    description = client.get("/api/openapi.json").json()
    assert description["openapi"].startswith("3.1")
    assert {"/api/orders/", "/api/accounts/{nic}/", "/api/orders/{service}/terminate"} <= set(
        description["paths"]
    )
    order = description["components"]["schemas"]["OrderOut"]["properties"]
    assert {"certificate", "domains", "service", "state"} <= set(order)
    assert description["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"


# Every documented status, reached.


def _world():
    account = AccountFactory(nic="xx-1-ovh", zones=["example.com"])
    AccountFactory(nic="xx-9-ovh", zones=["taken.example"])
    platform = delivered_platform(account)
    suspended = delivered_platform(account)
    platform_suspend(platform_id=suspended.pk, actor="test", reason="unpaid")
    terminated = delivered_platform(account)
    platform_terminate(platform_id=terminated.pk, actor="test")
    return {"platform": platform, "suspended": suspended, "terminated": terminated}


# The successful request of each operation: (path, body).
VALID = {
    ("post", "/api/orders/"): ("/api/orders/", {"account": "xx-1-ovh"}),
    ("get", "/api/orders/"): ("/api/orders/", None),
    ("get", "/api/orders/{service}/"): ("/api/orders/{platform}/", None),
    ("post", "/api/orders/{service}/suspend"): ("/api/orders/{platform}/suspend", {}),
    ("post", "/api/orders/{service}/resume"): ("/api/orders/{suspended}/resume", {}),
    ("post", "/api/orders/{service}/terminate"): ("/api/orders/{platform}/terminate", {}),
    ("post", "/api/accounts/"): ("/api/accounts/", {"nic": "xx-2-ovh", "email": "a@b.example"}),
    ("get", "/api/accounts/{nic}/"): ("/api/accounts/xx-1-ovh/", None),
    ("patch", "/api/accounts/{nic}/"): ("/api/accounts/xx-1-ovh/", {"language": "en"}),
}
# The request of each operation answered 404, 409, 422 (the others are alike for all).
SPECIFIC = {
    404: {
        "/api/orders/{service}/": "/api/orders/pex-none/",
        "/api/orders/{service}/suspend": "/api/orders/pex-none/suspend",
        "/api/orders/{service}/resume": "/api/orders/pex-none/resume",
        "/api/orders/{service}/terminate": "/api/orders/pex-none/terminate",
        "/api/accounts/{nic}/": "/api/accounts/xx-404-ovh/",
    },
    409: {
        ("post", "/api/orders/{service}/suspend"): ("/api/orders/{terminated}/suspend", {}),
        ("post", "/api/orders/{service}/resume"): ("/api/orders/{platform}/resume", {}),
        ("post", "/api/accounts/"): ("/api/accounts/", {"nic": "xx-1-ovh", "email": "a@b.example"}),
        ("patch", "/api/accounts/{nic}/"): (
            "/api/accounts/xx-1-ovh/",
            {"zones": ["taken.example"]},
        ),
    },
}


def _request(client, method, path, body, *, headers=AUTH, content_type="application/json"):
    send = getattr(client, method)
    if body is None:
        return send(path, headers=headers)
    data = body if isinstance(body, str) else json.dumps(body)
    return send(path, data, content_type=content_type, headers=headers)


def _reach(client, settings, world, method, route, status):
    names = {key: value.service for key, value in world.items()}
    path, body = VALID[(method, route)]
    path = path.format(**names)
    if status in (200, 201):
        return _request(client, method, path, body)
    if status == 401:
        return _request(client, method, path, body, headers={})
    if status == 405:
        return _request(client, "put", path, {})
    if status == 429:
        settings.RATELIMIT_ENABLED = True
        settings.RATELIMITS = {**settings.RATELIMITS, "api": (0, 60)}
        return _request(client, method, path, body)
    if status == 400:
        if method == "get":
            return _request(client, method, path + "?limit=0", None)
        return _request(client, method, path, {"account": 1, "nic": 1, "email": 1, "reason": 1})
    if status == 413:
        return _request(client, method, path, {"padding": "x" * MAX_BODY_BYTES})
    if status == 415:
        return _request(client, method, path, "a=b", content_type="text/plain")
    if status == 404:
        return _request(client, method, SPECIFIC[404][route], body)
    if status == 409:
        path, body = SPECIFIC[409][(method, route)]
        return _request(client, method, path.format(**names), body)
    if status == 422:
        _request(client, method, path, body, headers={**AUTH, "Idempotency-Key": "k"})
        other = {"account": "xx-9-ovh"}
        return _request(client, method, path, other, headers={**AUTH, "Idempotency-Key": "k"})
    raise AssertionError(f"No request reaches {status} of {method.upper()} {route}")


def test_every_documented_status_is_reached(settings, mailbox):
    description = Client().get("/api/openapi.json").json()
    documented = [
        (method, route, int(status))
        for route, operations in description["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    ]
    assert len(documented) > 50
    for method, route, status in documented:
        with transaction.atomic():  # each request on the same world, undone after
            settings.RATELIMIT_ENABLED = False
            cache.clear()
            response = _reach(Client(), settings, _world(), method, route, status)
            assert response.status_code == status, (method, route, response.content[:200])
            assert response["Content-Type"].startswith("application/json")
            transaction.set_rollback(True)
