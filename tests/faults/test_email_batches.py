"""The sweep's due emails go out in batches over one SMTP connection
(notifications.tasks.send_emails). Each email of a batch is claimed, sent and marked as if
it were alone: when the SMTP server refuses or goes away in the middle of a batch, or the
worker is killed in the middle of one, every email is still received exactly once."""

import pytest
import redis
from django.utils import timezone

from notifications.models import Email
from notifications.tasks import dispatch_due_emails
from outbox import owed
from provisioning.models import Job, Platform
from provisioning.services import JOBS, platform_order
from tests.factories import AccountFactory
from tests.faults.helpers import assert_each_email_once, end_email_leases, wait_until

pytestmark = pytest.mark.postgres


def delivered(count: int) -> list[Platform]:
    """Platforms whose delivery email is owed; the deliver job run here, in the test, by
    its stage alone (run_job would send the email itself, next: provisioning.tasks)."""
    platforms = [
        platform_order(account=AccountFactory(language="en"), actor="test") for _ in range(count)
    ]
    for platform in platforms:
        job = owed.claim(Job, platform.jobs.get().pk, lease_seconds=60)
        JOBS[job.kind].run(platform_id=platform.pk)
        owed.finish(job)
    return platforms


def messages_lost() -> None:
    """The emails' tasks never reached a worker (as when the broker was down at commit):
    the rows are the sweep's to send."""
    Email.objects.update(dispatched_at=None)


def all_due() -> None:
    Email.objects.filter(status="pending").update(due_at=timezone.now(), dispatched_at=None)


@pytest.mark.django_db
def test_the_sweep_sends_its_due_emails_over_one_connection(smtp):
    platforms = delivered(3)
    messages_lost()

    assert dispatch_due_emails() == 3  # eager: the batch is sent now

    smtp.wait_for(3)
    assert len(set(smtp.peers)) == 1  # one SMTP connection for the three
    assert_each_email_once(smtp, {platform: ["delivery"] for platform in platforms})
    assert set(Email.objects.values_list("status", "attempts")) == {("done", 1)}
    assert dispatch_due_emails() == 0  # nothing sent twice


@pytest.mark.django_db
def test_smtp_server_going_away_mid_batch_each_email_is_received_once(smtp):
    platforms = delivered(4)
    messages_lost()
    smtp.down_after = 1  # accepts the first, answers 421 to the second and stops

    assert dispatch_due_emails() == 4

    wait_until(lambda: not smtp.up, what="the SMTP server stopped")
    assert len(smtp.messages) == 1
    first = Email.objects.get(message_id=smtp.messages[0]["Message-ID"])
    assert (first.status, first.attempts) == ("done", 1)
    rest = Email.objects.exclude(pk=first.pk).order_by("pk")
    # The refused one and the one tried after it (no server) wait out a backoff; the
    # last was not tried over the batch's connection but alone, and waits too.
    assert [(e.status, e.attempts) for e in rest] == [("pending", 1)] * 3
    errors = [e.last_error[:16] for e in rest]
    assert errors == ["SMTP 421: 4.3.2 ", "SMTP unreachable", "SMTP unreachable"]
    assert all(e.due_at > timezone.now() and e.unmasked_encrypted for e in rest)
    assert dispatch_due_emails() == 0  # not due yet: nothing is sent again meanwhile

    smtp.start()
    all_due()
    assert dispatch_due_emails() == 3
    smtp.wait_for(4)
    assert len(set(smtp.peers[1:])) == 1  # the three others over one new connection
    assert_each_email_once(smtp, {platform: ["delivery"] for platform in platforms})


@pytest.mark.django_db
def test_a_refused_email_does_not_stop_the_batch(smtp):
    """A refusal is the message's (retried alone later); the next ones go on being sent."""
    platforms = delivered(3)
    messages_lost()
    smtp.reply = "451 4.3.0 Try again later"
    refused = Email.objects.order_by("pk").first()
    # Only the first of the batch is refused: the server accepts again once it has said so.
    original = smtp.handle_DATA

    async def refuse_once(server, session, envelope):
        response = await original(server, session, envelope)
        smtp.reply = None
        return response

    smtp.handle_DATA = refuse_once
    assert dispatch_due_emails() == 3
    smtp.wait_for(2)
    refused.refresh_from_db()
    assert (refused.status, refused.attempts, refused.last_error[:8]) == ("pending", 1, "SMTP 451")
    assert Email.objects.filter(status="done").count() == 2

    all_due()
    assert dispatch_due_emails() == 1
    smtp.wait_for(3)
    assert_each_email_once(smtp, {platform: ["delivery"] for platform in platforms})


def test_worker_killed_mid_batch_each_email_is_received_once(portal, smtp, redis_server):
    """A real worker takes the sweep's batch, sends the first email and is killed (SIGKILL,
    its whole process group) while the server holds the second's DATA. A new worker sends
    the rest, the interrupted one included, each once."""
    platforms = delivered(4)
    redis.Redis.from_url(redis_server.url).flushall()  # their send_email messages are lost
    smtp.hold_after = 1
    portal.start_beat()
    portal.start_worker()

    wait_until(lambda: smtp.holding, timeout=60, what="the second email's DATA held")
    portal.worker.kill()
    assert portal.received("notifications.tasks.send_emails")  # the sweep's batch
    assert len(smtp.messages) == 1
    wait_until(lambda: not smtp.holding, what="the SMTP server to see the client gone")
    smtp.release()
    assert end_email_leases() >= 1  # the email being sent when the worker died
    assert Email.objects.filter(status="done").count() == 1

    portal.start_worker()
    smtp.wait_for(4, timeout=60)
    assert_each_email_once(smtp, {platform: ["delivery"] for platform in platforms})
    attempts = sorted(Email.objects.values_list("attempts", flat=True))
    assert attempts[-1] == 2 and attempts[:2] == [1, 1]  # only the interrupted one twice
