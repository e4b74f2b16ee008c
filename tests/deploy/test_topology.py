"""The customer journey of the browser tests, and an operator's visit to the admin, through
the deployed topology (tests/deploy/conftest.py): what only nginx, TLS, gunicorn and the
production settings together can break."""

import http.client
import re
import ssl
import time
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS, Work
from tests.browser.test_customer_journey import customer_journey
from tests.deploy.conftest import HOST

pytestmark = pytest.mark.postgres
expect.set_options(timeout=TIMEOUT_MS)

# collectstatic's hashed names, which WhiteNoise serves as cacheable forever.
HASHED_STATIC = re.compile(r"/static/.+\.[0-9a-f]{12}\.(css|js)$")
FOREVER = "max-age=315360000"


class Traffic:
    """What a browser context's pages fetched and reported: every response, every request
    that failed, console messages and uncaught script errors."""

    def __init__(self, context) -> None:
        self.responses, self.failed, self.console, self.errors = [], [], [], []
        context.on("response", lambda response: self.responses.append(response))
        context.on("requestfailed", lambda request: self.failed.append(request.url))
        context.on("console", lambda message: self.console.append(message.text))
        context.on("weberror", lambda error: self.errors.append(str(error.error)))

    def refused(self) -> list[str]:
        return [f"{r.status} {r.url}" for r in self.responses if r.status >= 400]

    def static(self, kind: str) -> list:
        return [r for r in self.responses if r.request.resource_type == kind]

    def csp_violations(self) -> list[str]:
        return [text for text in self.console if "Content Security Policy" in text]


def assert_served_from_the_manifest(responses) -> None:
    assert responses, "no such file was loaded"
    for response in responses:
        assert response.status == 200, response.url
        assert HASHED_STATIC.search(response.url), response.url
        assert FOREVER in response.headers["cache-control"], response.url


def test_the_customer_journey_over_https(portal, mailbox, screen):
    s = screen(language="en")
    traffic = Traffic(s.context)
    customer_journey(
        SimpleNamespace(url=portal.url),
        Work(mailbox, in_process=False),
        s,
        nic="xx-91001-ovh",
        language="en",
        javascript=True,
    )

    # Every page, style sheet and script came, from its hashed, cacheable name.
    assert traffic.refused() == [] and traffic.failed == []
    assert_served_from_the_manifest(traffic.static("stylesheet"))
    assert_served_from_the_manifest(traffic.static("script"))
    assert any("/static/portal/setup." in r.url for r in traffic.static("script"))
    assert traffic.csp_violations() == [] and traffic.errors == []

    # HTTPS all the way: the pages say so to the browser, the cookies only travel over it,
    # and the browser sent them back (else the journey's pages would have asked for a login).
    documents = [r for r in traffic.responses if r.request.resource_type == "document"]
    assert all(r.url.startswith(f"{portal.url}/") for r in documents)
    assert "max-age=" in documents[-1].headers["strict-transport-security"]
    cookies = {cookie["name"]: cookie for cookie in s.context.cookies()}
    assert {"sessionid", "csrftoken"} <= cookies.keys()
    assert all(cookie["secure"] for cookie in cookies.values()), cookies
    assert cookies["sessionid"]["httpOnly"]
    home = documents[-1].request.all_headers()
    assert f"sessionid={cookies['sessionid']['value']}" in home["cookie"]


def test_the_admin_is_styled(portal, screen):
    get_user_model().objects.create_superuser("operator", "op@example.net", "operator-password")
    s = screen(language="en")
    traffic = Traffic(s.context)
    page = s.page
    page.goto(f"{portal.url}/admin/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("operator-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    s.shot("admin-index")

    assert traffic.refused() == [] and traffic.failed == []
    stylesheets = traffic.static("stylesheet")
    assert any("/static/admin/css/base." in r.url for r in stylesheets), stylesheets
    assert_served_from_the_manifest(stylesheets)
    assert traffic.csp_violations() == []
    header = page.locator("#header").evaluate("el => getComputedStyle(el).backgroundColor")
    assert header not in ("rgba(0, 0, 0, 0)", "transparent")  # base.css paints it


def test_plain_http_is_sent_to_https(portal):
    connection = http.client.HTTPConnection(HOST, portal.http_port, timeout=10)
    connection.request("GET", "/login/?next=/platforms/")
    response = connection.getresponse()
    assert response.status == 301
    # In the test the HTTPS port is not 443: the redirection names the host and path.
    assert response.getheader("Location") == f"https://{HOST}/login/?next=/platforms/"


class Client:
    """A login attempt over HTTPS from a chosen loopback address, verifying the server's
    certificate with the test CA."""

    def __init__(self, portal, source: str) -> None:
        self.portal, self.source = portal, source
        self.context = ssl.create_default_context(cafile=str(portal.tls.ca_file))

    def log_in(self, username: str, password: str, *, headers: dict | None = None) -> int:
        connection = http.client.HTTPSConnection(
            HOST,
            self.portal.https_port,
            source_address=(self.source, 0),
            context=self.context,
            timeout=30,
        )
        connection.request("GET", "/login/")
        response = connection.getresponse()
        page = response.read().decode()
        csrf_cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie")).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urlencode({"csrfmiddlewaretoken": token, "username": username, "password": password})
        connection.request(
            "POST",
            "/login/",
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf_cookie}",
                "Origin": self.portal.url,
                "Referer": f"{self.portal.url}/login/",
                **(headers or {}),
            },
        )
        status = connection.getresponse().status
        connection.close()
        return status


def test_rate_limits_count_the_browsers_address_not_the_proxys(portal, screen):
    """nginx connects from 127.0.0.2 and says who the client was in X-Forwarded-For: a
    browser on 127.0.0.1 that guessed too many passwords is refused, another client on
    127.0.0.3 is not. Behind a portal that counted the proxy's address, one guesser would
    lock every customer out; one that believed a client's own X-Forwarded-For would let a
    guesser go on under made-up addresses."""
    limit, window = settings.RATELIMITS["login"]
    # The counts are kept per fixed window: start far enough from its end for the dozen
    # requests below.
    if window - time.time() % window < 15:
        time.sleep(window - time.time() % window + 1)
    page = screen(language="en").page
    statuses = []
    for attempt in range(limit + 1):  # another user name each time: only the address counts
        page.goto(f"{portal.url}/login/")
        page.get_by_label("Customer account (NIC handle)").fill(f"xx-{attempt}-guess")
        page.get_by_label("Password", exact=True).fill("wrong-password")
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.get_by_role("button", name="Log in").click()
        statuses.append(posted.value.status)
    assert statuses == [200] * limit + [429]

    assert Client(portal, "127.0.0.3").log_in("xx-other-guess", "wrong-password") == 200
    # The guesser cannot pass for another client: nginx replaces what it claims.
    forged = {"X-Forwarded-For": "198.51.100.7"}
    assert Client(portal, HOST).log_in("xx-last-guess", "wrong-password", headers=forged) == 429
