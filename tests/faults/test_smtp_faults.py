"""Fault 3: the SMTP server refusing for a while (4xx), then down, then back: the email is
retried with growing delays and sent once. A permanent refusal (5xx) marks the email
failed at once; operators see it in admin and support staff resend it."""

import itertools
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from notifications.models import Email
from provisioning.models import Platform
from provisioning.services import platform_order
from tests.factories import AccountFactory
from tests.faults.helpers import assert_each_email_once, wait_until

pytestmark = pytest.mark.postgres

BACKOFF_BASE, BACKOFF_MAX = 0.5, 2.0  # the worker's RETRY_BACKOFF_BASE and _MAX


def test_smtp_refusing_then_down_then_back_sends_the_email_once_after_backoff(portal, smtp):
    smtp.reply = "451 4.3.0 Mailbox busy, try again later"
    portal.start_beat()
    portal.start_worker(EMAIL_MAX_ATTEMPTS="10", RETRY_BACKOFF_MAX=str(BACKOFF_MAX))
    platform = platform_order(account=AccountFactory(language="en"), actor="test")

    # Each failed attempt puts the row back, due later: attempt -> (due_at, error).
    retries: dict[int, tuple[datetime, str]] = {}

    def failed_attempts() -> int:
        row = Email.objects.first()
        if row and row.status == "pending" and row.last_error and row.attempts not in retries:
            retries[row.attempts] = (row.due_at, row.last_error)
        return len(retries)

    wait_until(lambda: failed_attempts() >= 3, every=0.02, what="three refusals")
    smtp.stop()
    wait_until(lambda: failed_attempts() >= 5, every=0.02, what="two attempts, no server")
    smtp.reply = None
    smtp.start()
    [message] = smtp.wait_for(1, timeout=30)

    email = wait_until(lambda: Email.objects.filter(status="done").first())
    assert message["Message-ID"] == email.message_id
    assert email.attempts == 6 and email.sent_at is not None and email.last_error == ""
    assert [retries[n][1][:8] for n in range(1, 6)] == ["SMTP 451"] * 3 + ["SMTP unr"] * 2

    # Backoff: each attempt came once the last was due, and was put back for twice as long
    # (up to the maximum), give or take the jitter: 0.5 s, 1 s, 2 s, 2 s, 2 s.
    first_refusal = datetime.fromtimestamp(smtp.attempts[0][0], UTC)
    due = [retries[n][0] for n in range(1, 6)]
    for attempt, (since, due_at) in enumerate(zip([first_refusal, *due[:-1]], due, strict=True), 1):
        expected = min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_MAX)
        delay = (due_at - since).total_seconds()
        assert 0.8 * expected <= delay <= 1.2 * expected + 1.5, (attempt, delay)
    # The refusals the server saw were spaced by those delays.
    refused = [at for at, reply in smtp.attempts if reply.startswith("451")]
    gaps = [later - earlier for earlier, later in itertools.pairwise(refused)]
    assert len(refused) == 3 and gaps[0] >= 0.4 and gaps[1] >= 0.8
    assert_each_email_once(smtp, {platform: ["delivery"]})
    assert Platform.objects.get(pk=platform.pk).state == "awaiting_setup"


@pytest.fixture
def support_client() -> Client:
    """Support staff: may view platforms and emails, and resend emails."""
    user = get_user_model().objects.create_user("sam", "sam@hoster.example", "pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_platform", "view_email", "resend_email"])
    )
    client = Client()
    client.force_login(user)
    return client


def test_smtp_permanent_refusal_marks_the_email_failed_visible_and_resendable(
    portal, smtp, support_client
):
    smtp.reply = "550 5.1.1 <ref@customer.example>: mailbox unavailable"
    portal.start_beat()
    portal.start_worker()
    account = AccountFactory(language="en")
    platform = platform_order(account=account, actor="test")

    original = wait_until(lambda: Email.objects.filter(status="failed").first())
    assert original.attempts == 1 and original.sent_at is None
    assert original.last_error.startswith("SMTP 550")
    wait_until(lambda: Platform.objects.get(pk=platform.pk).state == "awaiting_setup")
    # Not retried: one refusal is all the server saw, seconds later still.
    wait_until(lambda: Email.objects.get().due_at < timezone.now() - timezone.timedelta(seconds=2))
    assert len(smtp.attempts) == 1 and not smtp.messages

    # Visible in admin: the failed emails' list, and the platform's page with the reason.
    listing = support_client.get("/admin/notifications/email/", {"status__exact": "failed"})
    assert original.recipient in listing.content.decode()
    page = support_client.get(f"/admin/provisioning/platform/{platform.pk}/change/")
    page = page.content.decode()
    assert "Failed" in page and "mailbox unavailable" in page

    # The address is fixed on the mail side; support resends the email.
    smtp.reply = None
    response = support_client.post(
        f"/admin/provisioning/platform/{platform.pk}/resend/", {"kind": "delivery"}
    )
    assert response.status_code == 302
    [message] = smtp.wait_for(1)
    resend = wait_until(lambda: Email.objects.filter(status="done").first())
    assert resend.resend_of_id == original.pk and resend.requested_by == "staff:sam"
    assert message["Message-ID"] == resend.message_id != original.message_id
    original.refresh_from_db()
    assert original.status == "failed"
    assert platform.events.filter(kind="email_delivery", actor="staff:sam").count() == 1
    wait_until(lambda: len(smtp.attempts) == 2, timeout=3)
    assert len(smtp.messages) == 1
