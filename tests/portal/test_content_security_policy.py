"""Every response carries the strict Content-Security-Policy: pages, redirects, errors, the
admin and the API. (tests/browser/ checks in Chromium that the pages break none of it.)"""

import pytest
from django.test import Client

from tests.browser.conftest import csp_problems

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/login/", 200),
        ("get", "/", 302),
        ("get", "/setup/not-a-token/", 400),
        ("get", "/no/such/page/", 404),
        ("get", "/admin/login/", 200),
        ("get", "/admin/", 302),
        ("get", "/api/orders/nothing/", 401),
        ("post", "/login/", 403),  # no CSRF token
    ],
)
def test_every_response_has_the_policy(method, path, status):
    response = getattr(Client(enforce_csrf_checks=True), method)(path)
    assert response.status_code == status
    assert csp_problems(path, response.headers.get("Content-Security-Policy")) == []


def test_the_policy_allows_no_inline_script_nor_style():
    header = Client().get("/login/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in header.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert "unsafe" not in header
