import os
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from tests import factories

pytest_plugins = ["tests.processes", "tests.bind", "tests.pebble"]


# Skips: under the test command (FAIL_ON_SKIP=1, CI) a skipped test fails the run.
#
# The two layers (scripts/test): the SQLite layer records the tests that passed in it
# (--record-passed FILE); the PostgreSQL layer then leaves out those of them that cannot
# see the database (--ran-in FILE), since they give the same result on any database. A
# test is left out only if it is in that file, so no test is left out of both layers.

# A test that requests one of these (itself or through its fixtures) reaches the database,
# or the choice of database: it runs in both layers.
DATABASE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "_django_db_helper",  # what each of those requests, in pytest-django 4
        "django_db_setup",
        "live_server",
        "on_postgres",
    }
)


def pytest_addoption(parser):
    group = parser.getgroup("layers", "the SQLite and PostgreSQL layers of scripts/test")
    group.addoption(
        "--record-passed",
        metavar="FILE",
        help="write the node ids of the tests that passed to FILE",
    )
    group.addoption(
        "--ran-in",
        metavar="FILE",
        help="leave out (deselect) the tests that cannot reach the database and passed "
        "in the run that wrote FILE with --record-passed",
    )


def reaches_database(item) -> bool:
    """Whether the test may reach the database or depends on which one it is: pytest-django
    blocks the database for every test without the django_db mark or a database fixture."""
    if item.get_closest_marker("django_db") or item.get_closest_marker("postgres"):
        return True
    fixtures = getattr(item, "fixturenames", None)
    if fixtures is None:  # not a plain test function: assume it does
        return True
    return not DATABASE_FIXTURES.isdisjoint(fixtures)


def pytest_collection_modifyitems(config, items):
    ran_in = config.getoption("ran_in")
    if ran_in:
        passed = set(Path(ran_in).read_text().splitlines())
        selected, left_out = [], []
        for item in items:
            (left_out if item.nodeid in passed and not reaches_database(item) else selected).append(
                item
            )
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = selected
        _left_out[0] = len(left_out)
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))


_passed: dict[str, None] = {}  # node ids, in the order they ran
_left_out = [0]


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed:
        _passed[report.nodeid] = None
    elif report.failed:  # e.g. an error at teardown, after the test itself passed
        _passed.pop(report.nodeid, None)


def pytest_terminal_summary(terminalreporter, config):
    if config.getoption("ran_in"):
        terminalreporter.write_line(
            f"{_left_out[0]} test(s) left out: they cannot reach the database and passed in"
            " the SQLite layer"
        )


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and os.environ.get("FAIL_ON_SKIP") == "1":
        reporter.write_line(f"FAIL_ON_SKIP: {len(skipped)} test(s) skipped", red=True)
        session.exitstatus = 1
    record = session.config.getoption("record_passed")
    if record:
        Path(record).write_text("".join(f"{nodeid}\n" for nodeid in _passed))


# A real SMTP server in the test process.


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)
    reply: str | None = None  # set to e.g. "451 try later" to refuse messages

    async def handle_DATA(self, server, session, envelope):
        if self.reply:
            return self.reply
        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.lock:
            self.messages.append(message)
            self.lock.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[EmailMessage]:
        with self.lock:
            self.lock.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)

    def wait_for_subject(self, text: str, timeout: float = 20.0) -> list[EmailMessage]:
        """The messages whose subject holds `text`, once there is one (or the timeout)."""
        with self.lock:
            self.lock.wait_for(lambda: self.with_subject(text), timeout=timeout)
            return self.with_subject(text)

    def with_subject(self, text: str) -> list[EmailMessage]:
        return [m for m in self.messages if text in m["Subject"]]


@pytest.fixture(scope="session")
def smtp_server():
    # Imported here: a plugin module imported before pytest loads it loses assert rewriting.
    from harness.processes import free_port

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def mailbox(smtp_server, settings) -> Mailbox:
    """The SMTP server's received messages, emptied for each test; the portal sends to it."""
    box: Mailbox = smtp_server.handler
    box.messages.clear()
    box.reply = None
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.hostname
    settings.EMAIL_PORT = smtp_server.port
    yield box
    box.reply = None


def text_body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def account(db):
    return factories.AccountFactory()


@pytest.fixture
def customer_client(client, account):
    client.force_login(account.users.get())
    return client


@pytest.fixture(autouse=True)
def eager_celery():
    """In-process tests run tasks at once; the worker tests start real worker processes."""
    from portal.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def default_language():
    """A request leaves its language active on the thread: each test starts in English."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()
