"""Fault 7: a platform stuck in a state past its expected time (PLATFORM_STUCK_AFTER) is
flagged in admin, and can be retried: an automatic stage by the operator's retry, a
customer's step by resending its email (a fresh link, a new code)."""

from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from notifications.models import Email
from provisioning.models import Job, Platform
from provisioning.services import platform_order
from tests.factories import AccountFactory
from tests.faults.helpers import Customer, assert_certificate_once, wait_until

pytestmark = pytest.mark.postgres
CHANGELIST = "/admin/provisioning/platform/"


@pytest.fixture
def quickly_stuck(settings):
    """Every state is overdue after a second."""
    settings.PLATFORM_STUCK_AFTER = {state: 1 for state in settings.PLATFORM_STUCK_AFTER}
    settings.PLATFORM_STUCK_AFTER["failed"] = 0


@pytest.fixture
def operator() -> Client:
    user = get_user_model().objects.create_superuser("olga", "olga@hoster.example", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def support() -> Client:
    user = get_user_model().objects.create_user("sam", "sam@hoster.example", "pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_platform", "view_email", "resend_email"])
    )
    client = Client()
    client.force_login(user)
    return client


def flagged(client: Client) -> set[str]:
    """The services the admin's "Stuck" filter lists."""
    page = client.get(CHANGELIST, {"stuck": "yes"}).content.decode()
    return {p.service for p in Platform.objects.all() if p.service in page}


def state_of(platform: Platform) -> str:
    return Platform.objects.get(pk=platform.pk).state


def retry(operator: Client, platform: Platform) -> str:
    response = operator.post(
        CHANGELIST,
        {"action": "retry_failed_stage", "_selected_action": [platform.pk]},
        follow=True,
    )
    return " ".join(str(m) for m in response.context["messages"])


def test_failed_delivery_is_flagged_and_retried(portal, smtp, operator, quickly_stuck):
    """The address pool runs out: the delivery is retried, overdue (flagged), then fails
    (flagged, with the reason). The pool is enlarged, and the operator's retry delivers."""
    portal.start_beat()
    portal.start_worker(PLATFORM_IPV4_POOL="192.0.2.10/32", JOB_MAX_ATTEMPTS="5")
    account = AccountFactory(language="en")
    first = platform_order(account=account, actor="test")
    wait_until(lambda: state_of(first) == "awaiting_setup")
    second = platform_order(account=account, actor="test")

    def flagged_while_ordered() -> bool:
        before = state_of(second)
        listed = second.service in flagged(operator)
        return listed and before == state_of(second) == "ordered"

    wait_until(flagged_while_ordered, what="flagged while the delivery is retried")
    assert Job.objects.get(platform=second).attempts >= 1
    wait_until(lambda: state_of(second) == "failed")
    second.refresh_from_db()
    assert "PoolExhausted" in second.failure_reason and second.failed_from == "ordered"
    assert second.service in flagged(operator)
    page = operator.get(f"{CHANGELIST}{second.pk}/change/").content.decode()
    assert "No free address left in the IPV4 pool" in page

    portal.worker.stop()
    portal.start_worker(PLATFORM_IPV4_POOL="192.0.2.10/31")
    assert "retried" in retry(operator, second)
    Customer(account, smtp).email(second, "delivery")
    second.refresh_from_db()
    assert second.state == "awaiting_setup" and second.ipv4 == "192.0.2.11"
    assert second.events.filter(actor="staff:olga").exists()
    assert Email.objects.filter(kind="delivery").count() == 2  # one per platform


def test_certificate_authority_down_past_retries_is_flagged_and_retried(
    portal, smtp, dns, pebble, operator, settings, quickly_stuck
):
    """The CA stays down longer than the ACME job's attempts: the platform fails, flagged;
    the CA is back, the operator's retry gets the certificate, once."""
    settings.FINALISATION_DELAY = 1
    account = AccountFactory(zones=[dns.zone], language="en")
    customer = Customer(account, smtp)
    portal.start_beat()
    portal.start_worker(JOB_MAX_ATTEMPTS="3")
    platform = platform_order(account=account, actor="test")
    pebble.stop()
    customer.configure(platform, domain=dns.zone, dns_assist=True)

    wait_until(lambda: state_of(platform) == "failed", timeout=40)
    platform.refresh_from_db()
    assert platform.failed_from == "certificate_pending"
    assert "Could not reach the certificate authority" in platform.failure_reason
    assert platform.service in flagged(operator)

    pebble.start()
    assert "retried" in retry(operator, platform)
    customer.email(platform, "ready", timeout=60)
    platform.refresh_from_db()
    assert platform.state == "ready"
    assert_certificate_once(platform)
    assert platform.service not in flagged(operator)
    assert Job.objects.filter(platform=platform, kind="acme_dns").count() == 2


def test_customer_steps_overdue_are_flagged_and_their_email_resent(
    portal, smtp, operator, support, settings, quickly_stuck
):
    """A customer who does not act: the platform is flagged in awaiting setup, then in
    certificate validation; support resends the email, and the customer goes on with the
    resent link and the new code (the first code no longer works)."""
    settings.FINALISATION_DELAY = 1
    account = AccountFactory(zones=["example.com"], language="en")
    customer = Customer(account, smtp)
    portal.start_beat()
    portal.start_worker()
    platform = platform_order(account=account, actor="test")
    customer.email(platform, "delivery")
    wait_until(lambda: platform.service in flagged(operator), what="flagged awaiting setup")

    def resend(kind: str) -> None:
        sent = len(smtp.messages)
        response = support.post(f"{CHANGELIST}{platform.pk}/resend/", {"kind": kind})
        assert response.status_code == 302
        wait_until(lambda: len(smtp.messages) == sent + 1, what=f"{kind} resent")

    resend("delivery")
    smtp.messages.pop(0)  # the customer uses the resent link
    assert customer.configure(platform, domain="example.com", dns_assist=False).status_code == 200
    assert platform.service not in flagged(operator)

    customer.email(platform, "dcv")
    wait_until(lambda: platform.service in flagged(operator), what="flagged validating")
    first_dcv = next(m for m in smtp.messages if "Domain Control" in m["Subject"])
    resend("dcv")
    smtp.messages.remove(first_dcv)
    assert customer.validate(platform).status_code == 200
    customer.email(platform, "ready")
    platform.refresh_from_db()
    assert platform.state == "ready" and platform.service not in flagged(operator)
    resent = Email.objects.filter(resend_of__isnull=False, requested_by="staff:sam")
    assert sorted(resent.values_list("kind", flat=True)) == ["dcv", "delivery"]
    events = Counter(platform.events.values_list("kind", flat=True))
    assert events["email_delivery"] == events["email_dcv"] == 2 and events["ready"] == 1
    assert events["dcv_invalid"] == 0


def test_overdue_stage_still_being_retried_can_be_retried_now(
    portal, smtp, operator, quickly_stuck
):
    """The address pool ran out; the delivery waits a long backoff (ten minutes) before its
    next attempt. The pool is enlarged; the operator's retry runs the stage now."""
    portal.start_beat()
    backoff = {"RETRY_BACKOFF_BASE": "600", "RETRY_BACKOFF_MAX": "600"}
    portal.start_worker(PLATFORM_IPV4_POOL="192.0.2.10/32", **backoff)
    account = AccountFactory(language="en")
    first = platform_order(account=account, actor="test")
    wait_until(lambda: state_of(first) == "awaiting_setup")
    second = platform_order(account=account, actor="test")
    wait_until(lambda: Job.objects.get(platform=second).attempts == 1)
    wait_until(lambda: second.service in flagged(operator))

    portal.worker.stop()
    portal.start_worker(PLATFORM_IPV4_POOL="192.0.2.10/31", **backoff)
    assert "retried" in retry(operator, second)
    Customer(account, smtp).email(second, "delivery", timeout=10)
    assert state_of(second) == "awaiting_setup"
    assert second.events.filter(kind="retried", actor="staff:olga").count() == 1
    wait_until(lambda: Job.objects.get(platform=second).status == "done")
