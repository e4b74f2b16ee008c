"""Fault 6: two setup submissions at once for one platform, and two sweepers at once. One
wins; the other changes nothing."""

import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction
from django.test import Client

from outbox import owed
from provisioning.models import Job, Platform
from provisioning.services import platform_order
from tests.factories import AccountFactory
from tests.faults.helpers import (
    Customer,
    assert_certificate_once,
    assert_each_email_once,
    assert_events_once,
    assert_nothing_owed_twice,
    lock_waiters,
    platform_locked,
    wait_until,
)

pytestmark = pytest.mark.postgres


def at_once(functions) -> list:
    """Run the functions in threads released together; their results (or exceptions)."""
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)

    def run(index, function):
        try:
            barrier.wait()
            results[index] = function()
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_two_setup_submissions_at_once_one_wins(portal, smtp, settings):
    """The customer submits the form twice (two tabs) with different choices, and both
    requests reach the service together: the row lock makes them queue, the second finds
    the platform configured and changes nothing; the worker runs one set of jobs."""
    settings.FINALISATION_DELAY = 1
    account = AccountFactory(zones=["example.net"], language="en")
    customer = Customer(account, smtp)
    portal.start_beat()
    portal.start_worker()
    platform = platform_order(account=account, actor="test")
    customer.email(platform, "delivery")
    tabs = [Client(), Client()]
    for tab in tabs:
        tab.force_login(account.users.get())
    choices = [
        {"subdomain": "mail", "domain": "example.net", "dns_assist": True},
        {"subdomain": "webmail", "domain": "example.org", "dns_assist": False},
    ]

    # Both requests pass the page's own check, then wait for the row together.
    with platform_locked(platform.pk):
        results = []
        submitting = threading.Thread(
            target=lambda: results.extend(
                at_once(
                    [
                        lambda tab=tab, choice=choice: customer.configure(
                            platform, client=tab, **choice
                        )
                        for tab, choice in zip(tabs, choices, strict=True)
                    ]
                )
            )
        )
        submitting.start()
        wait_until(lambda: lock_waiters() == 2, what="both submissions waiting for the row")
    submitting.join(30)

    assert [r.status_code for r in results] == [200, 200]
    landed = [r.redirect_chain[-1][0] for r in results]
    assert sum(url.endswith("?configured=1") for url in landed) == 1  # the winner's page
    assert all(f"/platforms/{platform.service}/" in url for url in landed)
    platform.refresh_from_db()
    winner = choices[[url.endswith("?configured=1") for url in landed].index(True)]
    assert platform.server_name == f"{winner['subdomain']}.{winner['domain']}"
    assert platform.dns_assist == winner["dns_assist"]
    assert platform.events.filter(kind="configured").count() == 1
    jobs = Counter(platform.jobs.values_list("kind", flat=True))
    assert jobs["certificate"] == 1 and jobs["dns_assist" if winner["dns_assist"] else "dns_check"]

    # The one platform goes on to ready, each of its emails once.
    assert customer.validate(platform).status_code == 200
    customer.email(platform, "ready")
    platform.refresh_from_db()
    assert platform.state == "ready"
    kinds = ["delivery", "dcv", "ready"] + ([] if winner["dns_assist"] else ["dns_instructions"])
    assert_each_email_once(smtp, {platform: kinds})
    assert_events_once(platform)
    assert_certificate_once(platform)


def test_two_sweepers_at_once_take_each_row_once(transactional_db, settings):
    """take_due() in two sessions at the same moment: PostgreSQL's SKIP LOCKED gives each
    row to one of them; a sweeper that comes while the other holds its rows takes the
    rest; the rows taken are marked dispatched, so neither takes them again."""
    settings.OUTBOX_REDISPATCH_AFTER = 60
    account = AccountFactory()
    platforms = [
        Platform.objects.create(account=account, service=f"pex-sweep{n:03}", order_number=n + 1)
        for n in range(300)
    ]
    Job.objects.bulk_create(Job(platform=p, kind="deliver") for p in platforms)

    rounds = at_once([lambda: owed.take_due(Job, limit=120)] * 2)
    first, second = (set(ids) for ids in rounds)
    assert len(first) == len(second) == 120 and not first & second

    # A sweeper holds 40 of the rest in its transaction; the other one skips them.
    rest = list(Job.objects.filter(dispatched_at__isnull=True).values_list("pk", flat=True))
    held = threading.Event()
    release = threading.Event()

    def slow_sweeper():
        with transaction.atomic():
            list(Job.objects.filter(pk__in=rest[:40]).select_for_update())
            held.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=slow_sweeper)
    thread.start()
    held.wait(10)
    third = set(owed.take_due(Job))
    release.set()
    thread.join(10)
    assert third == set(rest[40:])
    fourth = set(owed.take_due(Job))
    assert fourth == set(rest[:40])
    assert owed.take_due(Job) == []
    assert len(first | second | third | fourth) == 300


def test_two_beats_at_once_dispatch_each_job_once(portal, smtp, redis_server):
    """Beat started twice by mistake: both sweep the owed rows of orders taken while the
    broker was down; each job is sent to the worker once (no redispatch within the test),
    and each platform is delivered once."""
    redis_server.stop()
    account = AccountFactory()
    platforms = [platform_order(account=account, actor="test") for _ in range(30)]
    assert not Job.objects.filter(dispatched_at__isnull=False).exists()
    redis_server.start()
    for _ in range(2):
        portal.start_beat(OUTBOX_REDISPATCH_AFTER="120", OUTBOX_SWEEP_INTERVAL="0.2")
    # The worker logs the sweeps it receives, counted below.
    portal.start_worker(OUTBOX_REDISPATCH_AFTER="120", LOG_PERIODIC_TASKS="true")

    smtp.wait_for(30, timeout=60)
    wait_until(lambda: Platform.objects.filter(state="awaiting_setup").count() == 30)
    time.sleep(1)  # more sweeps from both beats: nothing left to send
    sent = Counter(portal.received("provisioning.tasks.run_job"))
    assert len(sent) == 30 and set(sent.values()) == {1}
    sweeps = portal.received("provisioning.tasks.dispatch_due_jobs")
    assert len(sweeps) >= 10  # both beats kept sweeping
    assert_each_email_once(smtp, {p: ["delivery"] for p in platforms})
    for platform in platforms:
        assert_events_once(platform)
        assert_nothing_owed_twice(platform)
    assert Job.objects.filter(status="done", attempts=1).count() == 30
