"""The email outbox against a real SMTP server: retries, permanent refusals, resends."""

import pytest
from django.utils import timezone

from notifications.models import Email
from notifications.tasks import dispatch_due_emails, send_email
from outbox import owed
from provisioning.services import platform_email_resend, platform_order
from tests.factories import AccountFactory
from tests.helpers import work_off

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivery_email(mailbox) -> Email:
    """A delivery email queued, not yet sent."""
    platform = platform_order(account=AccountFactory(), actor="test")
    from provisioning.tasks import run_job

    run_job(platform.jobs.get().pk)
    return Email.objects.get(kind="delivery")


def make_due(email: Email) -> None:
    Email.objects.filter(pk=email.pk).update(due_at=timezone.now())


def test_temporary_refusal_is_retried_with_backoff_then_sent_once(mailbox, delivery_email):
    mailbox.reply = "451 4.3.0 Try again later"
    send_email(delivery_email.pk)
    delivery_email.refresh_from_db()
    assert delivery_email.status == "pending"
    assert delivery_email.attempts == 1
    assert delivery_email.unmasked_encrypted  # still owed: kept to be sent
    assert "451" in delivery_email.last_error
    assert delivery_email.due_at > timezone.now()  # backoff, kept in the row
    send_email(delivery_email.pk)  # not due yet: nothing happens
    assert Email.objects.get(pk=delivery_email.pk).attempts == 1

    mailbox.reply = None
    make_due(delivery_email)
    send_email(delivery_email.pk)
    delivery_email.refresh_from_db()
    assert delivery_email.status == "done" and delivery_email.sent_at
    assert len(mailbox.wait_for(1)) == 1


def test_server_down_is_retried(mailbox, delivery_email, settings):
    settings.EMAIL_PORT = 1  # nothing listens there
    send_email(delivery_email.pk)
    delivery_email.refresh_from_db()
    assert delivery_email.status == "pending"
    assert "SMTP unreachable" in delivery_email.last_error


def test_permanent_refusal_marks_the_email_failed(mailbox, delivery_email):
    mailbox.reply = "554 5.7.1 Rejected"
    send_email(delivery_email.pk)
    delivery_email.refresh_from_db()
    assert delivery_email.status == "failed"
    assert "554" in delivery_email.last_error
    assert mailbox.messages == []
    assert delivery_email.unmasked_encrypted == ""  # never to be sent: its link goes too


def test_retries_are_bounded(mailbox, delivery_email, settings):
    settings.EMAIL_MAX_ATTEMPTS = 3
    mailbox.reply = "421 4.7.0 Busy"
    for _ in range(3):
        make_due(delivery_email)
        send_email(delivery_email.pk)
    delivery_email.refresh_from_db()
    assert delivery_email.status == "failed" and delivery_email.attempts == 3
    assert delivery_email.unmasked_encrypted == ""


def test_a_resend_is_a_new_row_and_a_second_message(mailbox, delivery_email):
    work_off()
    platform_email_resend(
        platform_id=delivery_email.target_id, kind="delivery", actor="staff:alice"
    )
    work_off()
    messages = mailbox.wait_for(2)
    assert len(messages) == 2
    copy = Email.objects.get(resend_of=delivery_email)
    assert copy.requested_by == "staff:alice" and copy.message_id != delivery_email.message_id
    assert {m["Message-ID"] for m in messages} == {copy.message_id, delivery_email.message_id}


def test_sweep_resends_a_lost_message_but_not_a_sent_one(mailbox, delivery_email):
    Email.objects.filter(pk=delivery_email.pk).update(dispatched_at=None)
    assert dispatch_due_emails() == 1  # eager: sent now
    assert dispatch_due_emails() == 0
    assert len(mailbox.wait_for(1)) == 1


def test_a_worker_killed_while_sending_leaves_a_lease_that_expires(delivery_email):
    claimed = owed.claim(Email, delivery_email.pk, lease_seconds=60)
    assert claimed is not None
    assert owed.claim(Email, delivery_email.pk, lease_seconds=60) is None  # a duplicate
    Email.objects.filter(pk=delivery_email.pk).update(lease_until=timezone.now())
    assert owed.take_due(Email) == [delivery_email.pk]


def test_no_header_injection_through_the_subject(mailbox):
    account = AccountFactory()
    platform = platform_order(account=account, actor="test")
    # A service name never contains a newline, but whatever reaches a subject is one line.
    from notifications.services import render_email

    subject, _, _ = render_email(
        kind="delivery",
        language="en",
        context={"account": {"nic": "x\r\nBcc: victim@example.com"}, "platform": platform},
    )
    assert "\n" not in subject and "\r" not in subject


def test_email_dates_follow_the_email_language_not_the_request():
    from datetime import UTC, datetime

    from django.utils import translation

    from notifications.services import render_email

    context = {
        "order_number": 1234567,
        "server_name": "mail.example.com",
        "code": "X",
        "validation_email": "admin@example.com",
        "dcv_url": "https://p/dcv/",
        "expires_at": datetime(2026, 1, 31, tzinfo=UTC),
        "max_attempts": 5,
    }
    with translation.override("fr"):
        _, text, _ = render_email(kind="dcv", language="en", context=context)
    assert "31 January 2026" in text and "janvier" not in text


def test_a_batch_skips_what_another_worker_holds_or_has_sent(mailbox):
    """A batch sends only the rows it claims itself: one another worker is sending (its
    lease running) and one already sent are left alone, the others go out once."""
    from notifications.services import emails_send
    from provisioning.tasks import run_job

    for _ in range(4):
        run_job(platform_order(account=AccountFactory(), actor="test").jobs.get().pk)
    sent, held, *rest = Email.objects.order_by("pk")
    send_email(sent.pk)
    assert owed.claim(Email, held.pk, lease_seconds=60) is not None  # another worker's

    assert emails_send(email_ids=[sent.pk, held.pk, *(e.pk for e in rest)]) == []

    messages = mailbox.wait_for(3)
    assert len(messages) == 3
    assert sorted(m["Message-ID"] for m in messages) == sorted(
        [sent.message_id, *(e.message_id for e in rest)]
    )
    held.refresh_from_db()
    assert (held.status, held.attempts, held.sent_at) == ("running", 1, None)
    assert Email.objects.get(pk=sent.pk).attempts == 1  # not claimed again
