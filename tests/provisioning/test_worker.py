"""The whole of steps 1 and 2 with a real worker and beat on Redis and PostgreSQL."""

import re
import time

import pytest
from django.test import Client

from provisioning.models import Platform
from provisioning.services import platform_order
from tests.conftest import text_body
from tests.factories import PASSWORD, AccountFactory

pytestmark = pytest.mark.postgres


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_order_to_configured_with_a_real_worker(worker, mailbox, settings):
    settings.ORDER_API_TOKEN = "token"
    AccountFactory(nic="xx-33333-ovh", zones=["example.org"])
    client = Client()
    response = client.post(
        "/api/orders/",
        {"account": "xx-33333-ovh"},
        content_type="application/json",
        headers={"Authorization": "Bearer token"},
    )
    assert response.status_code == 201

    [message] = mailbox.wait_for(1, timeout=30)
    assert "est en cours de livraison" in message["Subject"]
    path = re.search(r"https?://[^/\s]+(/setup/\S+/)", text_body(message)).group(1)
    client.post("/login/", {"username": "xx-33333-ovh", "password": PASSWORD})
    done = client.post(
        path,
        {
            "service": response.json()["service"],
            "subdomain": "mail",
            "domain": "example.org",
            "validation_email": "admin",
            "dns_assist": "on",
        },
        follow=True,
    )
    assert "La configuration a bien été effectuée" in done.content.decode()  # French account
    assert Platform.objects.get().state == "configured"


def test_work_owed_while_no_worker_runs_is_done_by_the_sweep(worker, mailbox):
    """Orders committed while the broker message was lost are found by beat's sweep."""
    worker.stop()
    account = AccountFactory()
    platforms = [platform_order(account=account, actor="test") for _ in range(3)]
    # Drop the messages the commit sent: only the rows say what is owed now.
    import redis

    from tests.processes import REDIS_URL

    redis.Redis.from_url(REDIS_URL).flushdb()
    worker.start()

    mailbox.wait_for(3, timeout=30)
    wait_until(lambda: Platform.objects.filter(state="awaiting_setup").count() == 3)
    assert len(mailbox.messages) == 3
    assert {p.service for p in platforms} == {
        re.search(r"Exchange (\S+)", m["Subject"]).group(1) for m in mailbox.messages
    }


def worker_sessions() -> set[int]:
    """The PostgreSQL sessions open on the test database, other than the test's own."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def test_the_worker_keeps_its_database_sessions_between_tasks(worker, mailbox):
    """A session per process, kept (CONN_MAX_AGE), not one per task."""
    account = AccountFactory()
    for _ in range(3):
        platform_order(account=account, actor="test")
    mailbox.wait_for(3, timeout=30)
    after_first = worker_sessions()
    assert 1 <= len(after_first) <= 2  # the worker's two pool processes at most

    for _ in range(3):
        platform_order(account=account, actor="test")
    mailbox.wait_for(6, timeout=30)
    after_second = worker_sessions()
    assert after_first <= after_second
    assert len(after_second) <= 2
