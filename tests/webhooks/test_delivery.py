"""Webhooks to a real receiver on loopback (http.server in a thread) that checks every
signature, answers 500, times out and goes down for a while: each event still arrives,
and its copies carry the same id."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from harness.processes import free_port
from provisioning.services import platform_order, platform_suspend, platform_terminate
from tests.factories import AccountFactory
from tests.helpers import work_off
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_event_owe, webhook_resend
from webhooks.tasks import deliver

pytestmark = pytest.mark.django_db
SECRET = "whsec-test-secret"


def signature_valid(header: str, body: bytes, *, secret: str = SECRET, tolerance=300) -> bool:
    """What the README tells a receiver to do."""
    parts = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    fresh = abs(time.time() - timestamp) <= tolerance
    return fresh and hmac.compare_digest(expected.hexdigest(), parts["v1"])


class Receiver:
    """The billing system's endpoint. `script` says how the next requests are answered:
    a status code, or "slow" (answers 200 after the portal's timeout)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict] = []
        self.bad_signatures = 0
        self.script: list = []
        self.server = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not signature_valid(self.headers.get("X-Portal-Signature", "t=0,v1="), body):
                    receiver.bad_signatures += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                step = receiver.script.pop(0) if receiver.script else 200
                if step in (200, "slow"):
                    receiver.received.append(json.loads(body))
                if step == "slow":  # taken, but answered after the portal gave up waiting
                    time.sleep(1.5)
                    step = 200
                self.send_response(step)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/portal-events"


@pytest.fixture
def receiver(settings):
    receiver = Receiver()
    receiver.start()
    settings.ORDER_WEBHOOK_URL = receiver.url
    settings.ORDER_WEBHOOK_SECRET = SECRET
    settings.WEBHOOK_TIMEOUT = 0.5
    settings.RETRY_BACKOFF_BASE = 0.05
    settings.RETRY_BACKOFF_MAX = 0.2
    yield receiver
    receiver.stop()


def deliver_all(deadline: float = 20) -> None:
    """Beat's sweep and the worker, in the test process, until nothing is owed."""
    end = time.monotonic() + deadline
    while WebhookDelivery.objects.filter(status__in=["pending", "running"]).exists():
        assert time.monotonic() < end, list(WebhookDelivery.objects.values("status", "last_error"))
        for pk in WebhookDelivery.objects.filter(status="pending").values_list("pk", flat=True):
            deliver(pk)  # as a worker does with the sweep's message
        time.sleep(0.05)


def test_every_event_arrives_signed_through_errors_timeouts_and_an_outage(receiver, mailbox):
    receiver.script = [500, 503, "slow"]
    account = AccountFactory()
    platform = platform_order(account=account, actor="test")
    work_off()  # delivered: the first event, answered 500
    receiver.stop()  # down for a while: the next events find nobody
    platform_suspend(platform_id=platform.pk, actor="api", reason="Unpaid")
    platform_terminate(platform_id=platform.pk, actor="api")
    for _ in range(3):
        WebhookDelivery.objects.filter(status="pending").update(due_at=timezone.now())
        for pk in WebhookDelivery.objects.filter(status="pending").values_list("pk", flat=True):
            deliver(pk)
    assert "Connection refused" in " ".join(
        WebhookDelivery.objects.values_list("last_error", flat=True)
    )
    receiver.start()
    deliver_all()

    assert receiver.bad_signatures == 0
    owed = {str(delivery.event_id): delivery for delivery in WebhookDelivery.objects.all()}
    assert {d.event_type for d in owed.values()} == {
        "platform.delivered",
        "platform.suspended",
        "platform.terminated",
    }
    assert {event["id"] for event in receiver.received} == set(owed)  # each one arrived
    assert len(receiver.received) == len(owed) + 1  # the one that timed out came twice
    for event in receiver.received:  # a copy is the same event: same id, same body
        assert event == owed[event["id"]].payload
        assert event["service"] == platform.service
    assert all(d.status == "done" and d.response_status == 200 for d in owed.values())
    suspended = next(e for e in receiver.received if e["type"] == "platform.suspended")
    assert (suspended["state"], suspended["reason"]) == ("suspended", "Unpaid")


def test_a_refusal_is_not_retried_and_an_operator_resends_the_same_event(receiver):
    receiver.script = [410]
    account = AccountFactory()
    platform = platform_order(account=account, actor="test")
    event = webhook_event_owe(platform, "certificate.renewed", serial="0A1B")
    deliver_all()
    event.refresh_from_db()
    assert (event.status, event.response_status) == ("failed", 410)
    assert "refused" in event.last_error

    copy = webhook_resend(delivery_id=event.pk)
    deliver_all()
    copy.refresh_from_db()
    assert copy.status == "done"
    [received] = receiver.received
    assert received["id"] == str(event.event_id)
    assert (received["type"], received["serial"]) == ("certificate.renewed", "0A1B")


def test_nothing_is_owed_without_a_receiver(settings):
    settings.ORDER_WEBHOOK_URL = ""
    platform_order(account=AccountFactory(), actor="test")
    work_off()
    assert not WebhookDelivery.objects.exists()
