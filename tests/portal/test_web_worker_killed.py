"""A gunicorn worker killed in the middle of a customer's request (SIGKILL: the machine
pulled out from under it) loses nothing and does nothing twice: the session and the
platform are as before the request or as after it, the customer is still logged in and
can retry, and a retry does not configure the platform twice.

Real processes: gunicorn (one sync worker, the master starts another) serving the test
database with the cache (session copies) on a redis-server of the test's own and the
broker on another. The request is held at a known point by the test: a row lock on the
platform it holds, or a paused Redis; the worker is killed while it waits there."""

import os
import signal
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.sessions.models import Session

from harness.processes import free_port
from provisioning import links
from provisioning.models import Job, Platform, PlatformEvent
from tests.factories import PASSWORD, AccountFactory
from tests.helpers import delivered_platform
from tests.processes import ManagedProcess, RedisServer, database_url, portal_env

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Gunicorn(ManagedProcess):
    ready = b"Booting worker"

    def __init__(self, *, port: int, env: dict, log: Path) -> None:
        self.port = port
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "120"),
        ]
        super().__init__(command=command, env=env, log=log)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def kill_worker(self) -> None:
        (pid,) = self.worker_pids()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.worker_pids() in ([], [pid]):  # the master starts another
            assert time.monotonic() < deadline, self.log_tail()
            time.sleep(0.05)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _redis(tmp_path: Path, name: str) -> RedisServer:
    directory = tmp_path / name
    directory.mkdir()
    server = RedisServer(port=free_port(), directory=directory)
    server.start()
    return server


@pytest.fixture
def stack(tmp_path, settings):
    cache, broker = _redis(tmp_path, "cache"), _redis(tmp_path, "broker")
    env = portal_env(settings, broker_url=broker.url, var_dir=tmp_path)
    # A paused cache holds the request (no 1-second timeout) until the test kills it.
    env["CACHE_URL"] = cache.url.rsplit("/", 1)[0] + "/1?socket_timeout=60"
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    env["RATELIMIT_ENABLED"] = "false"
    web = Gunicorn(port=free_port(), env=env, log=tmp_path / "gunicorn.log")
    web.start()
    yield web, cache, broker
    web.stop()
    for server in (cache, broker):
        server.resume()
        server.stop()


def log_in(web: Gunicorn, account) -> requests.Session:
    # The tests' fast hasher is not one gunicorn's settings accept.
    user = account.users.get()
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    browser = requests.Session()
    browser.get(f"{web.base}/login/")
    response = browser.post(
        f"{web.base}/login/",
        {
            "username": account.nic,
            "password": PASSWORD,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        headers={"Referer": f"{web.base}/login/"},
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text
    return browser


def is_logged_in(web: Gunicorn, browser: requests.Session) -> bool:
    response = browser.get(f"{web.base}/", allow_redirects=False)
    assert response.status_code in (200, 302)
    return response.status_code == 200


def post_setup(web: Gunicorn, browser: requests.Session, platform) -> requests.Response:
    path = f"/setup/{links.setup_token(platform)}/"
    return browser.post(
        f"{web.base}{path}",
        {
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            "service": platform.service,
            "subdomain": "exchange",
            "domain": "example.com",
            "validation_email": "hostmaster",
            "dns_assist": "on",
        },
        headers={"Referer": f"{web.base}{path}"},
        allow_redirects=False,
        timeout=60,
    )


def in_background(call) -> threading.Thread:
    """The request, sent from a thread: its connection is cut when the worker dies
    (`thread.response` says if it was answered instead)."""

    def run():
        try:
            thread.response = call()
        except requests.RequestException:
            thread.response = None

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def configured_once(platform) -> None:
    platform.refresh_from_db()
    assert platform.state == "configured"
    assert PlatformEvent.objects.filter(platform=platform, kind="configured").count() == 1
    jobs = Job.objects.filter(platform=platform).exclude(kind="deliver")
    kinds = sorted(jobs.values_list("kind", flat=True))
    assert kinds == ["certificate", "dns_assist"]


def test_killed_while_configuring_changes_nothing_and_the_customer_retries(stack):
    web, _cache, _broker = stack
    account = AccountFactory(zones=["example.com"], language="en")
    platform = delivered_platform(account)
    browser = log_in(web, account)
    with (
        psycopg.connect(database_url()) as holder,
        psycopg.connect(database_url(), autocommit=True) as watcher,
    ):
        # (The watcher outside any transaction: pg_stat_activity is read afresh each time.)
        # The test holds the platform's row: the request waits in platform_configure's
        # transaction, after the form's checks, before anything is written.
        holder.execute(
            "SELECT 1 FROM provisioning_platform WHERE id = %s FOR UPDATE", [platform.pk]
        )
        thread = in_background(lambda: post_setup(web, browser, platform))
        wait_for(
            lambda: (
                not thread.is_alive()
                or watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database() AND query LIKE '%provisioning_platform%'"
                ).fetchone()[0]
            ),
            "the request to wait for the platform's lock",
        )
        assert thread.is_alive(), (thread.response.status_code, thread.response.text[:3000])
        web.kill_worker()
        holder.rollback()
    thread.join(timeout=30)
    platform.refresh_from_db()
    assert platform.state == "awaiting_setup"
    assert not Job.objects.filter(platform=platform).exclude(kind="deliver").exists()
    assert not PlatformEvent.objects.filter(platform=platform, kind="configured").exists()
    # Still logged in (the new worker reads the session), and the retry configures it once.
    assert is_logged_in(web, browser)
    response = post_setup(web, browser, platform)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/platforms/{platform.service}/?configured=1"
    configured_once(platform)


def test_killed_after_the_commit_configures_once_and_a_retry_is_harmless(stack):
    web, _cache, broker = stack
    account = AccountFactory(zones=["example.com"], language="en")
    platform = delivered_platform(account)
    browser = log_in(web, account)
    # The broker frozen: the request commits, then waits to publish the owed tasks.
    broker.pause()
    thread = in_background(lambda: post_setup(web, browser, platform))
    wait_for(
        lambda: Platform.objects.filter(pk=platform.pk, state="configured").exists(),
        "the configuration to commit",
    )
    web.kill_worker()
    broker.resume()
    thread.join(timeout=30)
    configured_once(platform)  # the owed jobs are rows: the sweep sends them again
    assert is_logged_in(web, browser)
    response = post_setup(web, browser, platform)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/platforms/{platform.service}/"
    configured_once(platform)


def test_killed_while_logging_out_keeps_the_customer_logged_in(stack):
    web, cache, _broker = stack
    account = AccountFactory(language="en")
    browser = log_in(web, account)
    key = browser.cookies["sessionid"]
    # The cache frozen: the logout waits to replace the session's copy, before the row.
    cache.pause()
    thread = in_background(
        lambda: browser.post(
            f"{web.base}/logout/",
            {"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": f"{web.base}/"},
            timeout=60,
        )
    )
    time.sleep(1.0)
    web.kill_worker()
    cache.resume()
    thread.join(timeout=30)
    # Nothing half done: the session is whole, its row and its copy (a copy outliving its
    # row would log in a cookie the customer believed logged out).
    assert Session.objects.filter(session_key=key).exists()
    browser.cookies.set("sessionid", key)
    assert is_logged_in(web, browser)
    # The retry logs out, for good: the old cookie no longer works.
    response = browser.post(
        f"{web.base}/logout/",
        {"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": f"{web.base}/"},
        allow_redirects=False,
    )
    assert response.status_code == 302
    browser.cookies.set("sessionid", key)
    assert not is_logged_in(web, browser)
