"""Browser fixtures: Debian's Chromium driven by Playwright against the portal served on
loopback by pytest-django's live server, with the emails read from the test SMTP server.

The owed work (deliveries, DNS Assist, certificates, emails) is done either by a real
Celery worker on Redis and PostgreSQL (`real_worker`), or in the test process
(`in_process_worker`: the tasks run eagerly, and tests/helpers.work_off drains the rest).
Each test saves a screenshot per step under test-artifacts/browser/<test name>/.
"""

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.utils import timezone

from provisioning.models import Job, Platform
from tests.bind import BindServer
from tests.conftest import Mailbox, text_body
from tests.helpers import work_off

CHROMIUM = "/usr/bin/chromium"
# As root, and with no network beyond loopback: no sandbox, and nothing that calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
# The accessibility checker, installed by scripts/test from tests/browser/package.json.
AXE_CORE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
# The directives every page's Content-Security-Policy must hold (portal/settings.py).
REQUIRED_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
# Run before any script of each page: the browser's own report of what its policy blocked.
_REPORT_CSP_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${event.effectiveDirective} blocked ${event.blockedURI || "?"}`
    + ` at ${event.sourceFile || location.href}:${event.lineNumber}`);
});"""
TIMEOUT_MS = 15_000
EMAIL_TIMEOUT = 45.0


# Package scope: once the browser tests are over, Playwright's loop leaves this thread and
# the other tests' ORM calls are plain synchronous calls again.
@pytest.fixture(scope="package")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(playwright_instance):
    # scripts/test installs Debian's chromium when it is missing; without it this fails.
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)")
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture(scope="package", autouse=True)
def _orm_beside_playwright():
    """Playwright's sync API keeps an asyncio loop registered in the test's thread, so
    Django takes the test's plain ORM calls for calls from async code and refuses them.
    Django's documented way out, for this package only (until its last teardown: the
    database flush that ends each test)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture
def artifacts(request) -> Path:
    """This test's screenshot folder, emptied first."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    folder = ARTIFACTS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def csp_problems(url: str, header: str | None) -> list[str]:
    """What a page's Content-Security-Policy header lacks of REQUIRED_CSP."""
    if not header:
        return [f"{url}: no Content-Security-Policy"]
    directives = {}
    for directive in header.split(";"):
        name, *sources = directive.split()
        directives[name] = sources
    problems = [
        f"{url}: {name} is {directives.get(name)}, not [{source}]"
        for name, source in REQUIRED_CSP.items()
        if directives.get(name) != [source]
    ]
    if "'unsafe-inline'" in directives.get("script-src", []):
        problems.append(f"{url}: script-src allows inline scripts")
    return problems


class CspWatch:
    """Everything a context's pages report about the Content-Security-Policy: the browser's
    violation events and console errors, and each document served without the policy."""

    def __init__(self, context, *, javascript: bool) -> None:
        self.problems: list[str] = []
        context.on("console", self._console)
        context.on("response", self._response)
        if javascript:
            context.expose_function("reportCspViolation", self._violation)
            context.add_init_script(_REPORT_CSP_VIOLATIONS)

    def _violation(self, description: str) -> None:
        self.problems.append(description)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.problems.append(message.text)

    def _response(self, response) -> None:
        if response.request.resource_type == "document":
            header = response.headers.get("content-security-policy")
            self.problems.extend(csp_problems(response.url, header))


@dataclass
class Screen:
    """A browser context (language, viewport, JavaScript on or off) and its page."""

    context: object
    page: object
    folder: Path
    csp: CspWatch
    steps: list[str] = field(default_factory=list)

    def assert_csp_respected(self) -> None:
        """Every page so far was served with the strict policy and broke none of it."""
        assert self.csp.problems == []

    def shot(self, step: str) -> Path:
        """Save the page as <folder>/<nn>-<step>.png, numbered in the order of the steps."""
        self.steps.append(step)
        path = self.folder / f"{len(self.steps):02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def screen(browser, playwright_instance, artifacts) -> Iterator[Callable[..., Screen]]:
    """Open a browser context: screen(language="fr", phone=True, javascript=False).

    With axe=True the pages may be given axe-core (pages.check_accessibility): a script the
    page's Content-Security-Policy would rightly refuse, so that context bypasses it."""
    screens = []

    def open_screen(
        *, language: str = "en", phone: bool = False, javascript: bool = True, axe: bool = False
    ):
        if axe and not AXE_CORE.exists():
            pytest.fail(f"{AXE_CORE} is missing: npm ci --prefix tests/browser (scripts/test does)")
        options = {
            "locale": {"fr": "fr-FR", "en": "en-GB"}[language],
            "java_script_enabled": javascript,
            "timezone_id": "UTC",
            "bypass_csp": axe,
        }
        if phone:
            options.update(playwright_instance.devices["Pixel 7"])
        else:
            options["viewport"] = {"width": 1280, "height": 900}
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        csp = CspWatch(context, javascript=javascript)
        screens.append(Screen(context=context, page=context.new_page(), folder=artifacts, csp=csp))
        return screens[-1]

    yield open_screen
    for opened in screens:
        opened.context.close()
    # Whatever the test did, no page of it may have been served without the policy or
    # have broken it.
    for opened in screens:
        opened.assert_csp_respected()


@pytest.fixture
def portal(transactional_db, live_server, settings, mailbox, bind: BindServer):
    """The portal on loopback: emailed links lead to the live server, DNS Assist writes to
    BIND9 and the records are checked there."""
    settings.PORTAL_BASE_URL = live_server.url
    bind.configure(settings)
    return live_server


class Work:
    """Who does the owed work, and how a test waits for the emails it sends."""

    def __init__(self, mailbox: Mailbox, *, in_process: bool) -> None:
        self.mailbox = mailbox
        self.in_process = in_process

    def email(self, subject: str, timeout: float = EMAIL_TIMEOUT) -> EmailMessage:
        """The one email whose subject contains `subject`, once it has arrived."""
        deadline = time.monotonic() + timeout
        while True:
            if self.in_process:
                work_off()
            found = self.mailbox.with_subject(subject)
            if found:
                assert len(found) == 1, [m["Subject"] for m in found]
                return found[0]
            if time.monotonic() > deadline:
                subjects = [m["Subject"] for m in self.mailbox.messages]
                raise AssertionError(f"no email with {subject!r} in {timeout} s: {subjects}")
            with self.mailbox.lock:
                self.mailbox.lock.wait(timeout=0.2)

    @staticmethod
    def four_hours_later() -> None:
        """The end of finalisation is due now (the guide's "up to 4 hours")."""
        now = timezone.now()
        Platform.objects.filter(state="finalising").update(due_at=now)
        Job.objects.filter(kind="finalise", status="pending").update(due_at=now)


def link(message: EmailMessage, path: str) -> str:
    """The absolute link of the message's text body whose path starts with `path`."""
    return re.search(rf"https?://[^/\s]+{path}\S+", text_body(message)).group(0)


@pytest.fixture
def in_process_worker(portal, mailbox) -> Work:
    """The test process does the owed work: tasks run eagerly (the request that makes work
    owed runs it once committed), and work_off() drains what is due."""
    return Work(mailbox, in_process=True)


@pytest.fixture
def real_worker(request, portal, monkeypatch, bind: BindServer, mailbox) -> Work:
    """A real Celery worker and beat (tests/processes.py) on Redis and PostgreSQL, with the
    same DNS server, SMTP server and links as the live server."""
    for name, value in {
        "DNS_UPDATE_SERVER": bind.address,
        "DNS_TSIG_KEY_NAME": bind.key_name,
        "DNS_TSIG_ALGORITHM": bind.key_algorithm,
        "DNS_TSIG_SECRET": bind.key_secret,
        "DNS_CHECK_RESOLVERS": bind.address,
        "DNS_TIMEOUT": "2",
    }.items():
        monkeypatch.setenv(name, value)
    request.getfixturevalue("worker")  # reads the environment and settings set above
    return Work(mailbox, in_process=False)
