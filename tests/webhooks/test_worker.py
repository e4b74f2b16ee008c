"""Webhooks delivered by a real Celery worker and beat on Redis, to a receiver on loopback
that answers 500 and then is down for a while: every event arrives, signed, and copies only
ever carry the same id."""

import time

import pytest
import redis

from provisioning.services import platform_order, platform_suspend, platform_terminate
from tests.factories import AccountFactory
from tests.processes import REDIS_URL, WorkerProcess, portal_env, use_broker
from tests.webhooks.test_delivery import SECRET, Receiver
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.postgres


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def webhook_worker(transactional_db, mailbox, tmp_path, settings, receiver):
    from portal.celery import app

    settings.ORDER_WEBHOOK_URL = receiver.url
    settings.ORDER_WEBHOOK_SECRET = SECRET
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = portal_env(
        settings,
        broker_url=REDIS_URL,
        var_dir=tmp_path,
        shared=("EMAIL_HOST", "EMAIL_PORT", "ORDER_WEBHOOK_URL", "ORDER_WEBHOOK_SECRET"),
        OUTBOX_SWEEP_INTERVAL="1",
        OUTBOX_REDISPATCH_AFTER="3",
        RETRY_BACKOFF_BASE="0.5",
        RETRY_BACKOFF_MAX="2",
        WEBHOOK_TIMEOUT="2",
    )
    process = WorkerProcess(env=env, log=tmp_path / "worker.log", beat=True)
    use_broker(app, REDIS_URL)
    process.start()
    yield process
    process.kill()  # the test is over: no need to wait for a warm shutdown
    use_broker(app, None)


def test_a_real_worker_delivers_every_event_through_errors_and_an_outage(webhook_worker, receiver):
    receiver.script = [500, 500]
    platform = platform_order(account=AccountFactory(), actor="test")
    deadline = time.monotonic() + 60
    while not WebhookDelivery.objects.filter(event_type="platform.delivered").exists():
        assert time.monotonic() < deadline, "the platform was never delivered"
        time.sleep(0.2)
    receiver.stop()  # down while the next events are owed
    platform_suspend(platform_id=platform.pk, actor="api", reason="Unpaid")
    platform_terminate(platform_id=platform.pk, actor="api")
    while "refused" not in " ".join(WebhookDelivery.objects.values_list("last_error", flat=True)):
        assert time.monotonic() < deadline, "no attempt met the outage"
        time.sleep(0.2)
    receiver.start()

    events = {str(delivery.event_id): delivery for delivery in WebhookDelivery.objects.all()}
    while {event["id"] for event in receiver.received} != set(events):
        assert time.monotonic() < deadline, (receiver.received, list(events))
        time.sleep(0.2)
    assert receiver.bad_signatures == 0
    assert {d.event_type for d in events.values()} == {
        "platform.delivered",
        "platform.suspended",
        "platform.terminated",
    }
    for event in receiver.received:
        assert event == events[event["id"]].payload
