"""Fault 1: a worker killed with SIGKILL in the middle of each stage; a new worker finishes.

The worker is held in the middle of a stage by something outside it that is slow: the
platform's row locked by a concurrent transaction (the stage has claimed its job and did
what it does outside the database, and waits for the row), an SMTP server that does not
answer DATA, or a CA paused with SIGSTOP. Then its whole process group is killed, as the
kernel or an orchestrator would, and a new worker is started: the sweep gives the job back
once its lease ran out."""

import signal

import pytest

from certificates.models import CertificateOrder
from notifications.models import Email
from provisioning.models import Job, Platform
from provisioning.services import platform_order
from tests.factories import AccountFactory
from tests.faults.helpers import (
    Customer,
    assert_certificate_once,
    assert_dns_records_once,
    assert_each_email_once,
    assert_events_once,
    assert_nothing_owed_twice,
    end_email_leases,
    job_running,
    lock_waiters,
    platform_locked,
    wait_until,
)

pytestmark = pytest.mark.postgres


def kill_while_held(portal, platform, kinds: list[str], *, also=lambda: True) -> None:
    """The current worker has claimed the platform's jobs of these kinds and waits for the
    platform's row: kill it there."""
    wait_until(
        lambda: (
            all(job_running(platform, kind) for kind in kinds)
            and lock_waiters() >= len(kinds)
            and also()
        ),
        what=f"worker holding {', '.join(kinds)} of {platform.service}",
    )
    portal.worker.kill()


def kill_while_sending(portal, smtp) -> None:
    """The SMTP server holds DATA: the worker is in the middle of sending. Kill it there;
    the server, having accepted nothing yet, drops the message with the connection."""
    wait_until(lambda: smtp.holding, what="a message held by the SMTP server")
    portal.worker.kill()
    wait_until(lambda: not smtp.holding, what="the SMTP server to see the client gone")
    smtp.release()
    assert end_email_leases() == 1


def test_worker_killed_in_each_stage_a_new_worker_finishes(portal, smtp, dns, settings):
    settings.FINALISATION_DELAY = 2
    account = AccountFactory(zones=[dns.zone], language="en")
    customer = Customer(account, smtp)
    updates_before = dns.updates_received()
    portal.start_beat()
    portal.start_worker()

    # Delivery: the deliver job is claimed and waits for the row.
    portal.worker.pause()
    platform = platform_order(account=account, actor="test")
    with platform_locked(platform.pk):
        portal.worker.resume()
        kill_while_held(portal, platform, ["deliver"])
    assert Platform.objects.get(pk=platform.pk).state == "ordered"

    # The delivery email: the SMTP server holds DATA.
    smtp.hold()
    portal.start_worker()
    kill_while_sending(portal, smtp)
    portal.start_worker()
    customer.email(platform, "delivery")

    # Setup: DNS Assist has written the records and waits for the row to record it; the
    # certificate request has claimed its job and waits for the row too.
    portal.worker.pause()
    assert customer.configure(platform, domain=dns.zone, dns_assist=True).status_code == 200
    platform.refresh_from_db()
    assert platform.state == "configured"
    with platform_locked(platform.pk):
        portal.worker.resume()
        kill_while_held(
            portal,
            platform,
            ["dns_assist", "certificate"],
            also=lambda: dns.served(platform.server_name, "A") == {platform.ipv4},
        )
    platform.refresh_from_db()
    assert (platform.state, platform.dns_state) == ("configured", "pending")

    # The validation email: the SMTP server holds DATA.
    smtp.hold()
    portal.start_worker()
    kill_while_sending(portal, smtp)
    portal.start_worker()
    assert customer.validate(platform).status_code == 200

    # Finalisation: the job comes due, is claimed and waits for the row.
    platform.refresh_from_db()
    assert platform.state == "finalising"
    with platform_locked(platform.pk):
        kill_while_held(portal, platform, ["finalise"])
    assert Platform.objects.get(pk=platform.pk).state == "finalising"

    # The ready email: the SMTP server holds DATA.
    smtp.hold()
    portal.start_worker()
    kill_while_sending(portal, smtp)
    portal.start_worker()
    customer.email(platform, "ready")

    # Five workers killed; the last one finished the work, each piece of it once.
    platform.refresh_from_db()
    wait_until(lambda: Platform.objects.get(pk=platform.pk).dns_state == "verified")
    assert platform.state == "ready"
    assert_each_email_once(smtp, {platform: ["delivery", "dcv", "ready"]})
    assert_events_once(platform)
    assert_dns_records_once(dns, platform)
    assert dns.updates_received() - updates_before == 1  # the rerun saw the records right
    assert_certificate_once(platform)
    assert_nothing_owed_twice(platform)
    assert len(portal.workers) == 7
    assert Job.objects.exclude(kind="dns_check").filter(attempts__gt=1).count() == 4


def test_worker_killed_after_the_smtp_server_accepted_sends_the_same_message_again(portal, smtp):
    """The one window left open: the SMTP server has accepted the message, and the worker
    dies before it hears so and marks the row sent. The next worker sends the row again,
    with the same Message-ID, so the receiving side can drop the copy."""
    account = AccountFactory(language="en")
    portal.start_beat()
    smtp.hold(accepted=True)
    portal.start_worker()
    platform = platform_order(account=account, actor="test")
    wait_until(lambda: smtp.holding, what="the accepted message's reply held")
    portal.worker.kill()
    wait_until(lambda: not smtp.holding, what="the SMTP server to see the client gone")
    smtp.release()
    assert end_email_leases() == 1
    portal.start_worker()

    first, second = smtp.wait_for(2)
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Subject"] == second["Subject"]
    email = wait_until(lambda: Email.objects.filter(status="done").first())
    assert Email.objects.count() == 1
    assert (email.kind, email.attempts) == ("delivery", 2)
    assert email.message_id == first["Message-ID"]
    assert Platform.objects.get(pk=platform.pk).state == "awaiting_setup"


def test_worker_killed_after_the_ca_issued_a_new_worker_finishes_with_that_certificate(
    portal, smtp, dns, pebble, settings
):
    """ACME with DNS Assist: the CA has issued and the portal stored the certificate, and
    the worker dies before the platform moves on. The next worker uses that certificate:
    no second order at the CA."""
    settings.FINALISATION_DELAY = 1
    account = AccountFactory(zones=[dns.zone], language="en")
    customer = Customer(account, smtp)
    portal.start_beat(JOB_LEASE_SECONDS="10")
    portal.start_worker(JOB_LEASE_SECONDS="10")
    platform = platform_order(account=account, actor="test")

    # The CA answers slowly (paused) while the certificate request goes through.
    pebble.process.send_signal(signal.SIGSTOP)
    try:
        customer.configure(platform, domain=dns.zone, dns_assist=True)
        wait_until(lambda: Platform.objects.get(pk=platform.pk).state == "certificate_pending")
        with platform_locked(platform.pk):
            pebble.process.send_signal(signal.SIGCONT)
            kill_while_held(
                portal,
                platform,
                ["acme_dns"],
                also=lambda: CertificateOrder.objects.filter(status="issued").exists(),
            )
    finally:
        pebble.process.send_signal(signal.SIGCONT)
    issued = CertificateOrder.objects.get()
    assert Platform.objects.get(pk=platform.pk).state == "certificate_pending"

    portal.start_worker(JOB_LEASE_SECONDS="10")
    customer.email(platform, "ready", timeout=40)
    platform.refresh_from_db()
    assert platform.state == "ready"
    assert_certificate_once(platform)
    order = platform.certificate
    assert (order.serial, order.acme_order_url) == (issued.serial, issued.acme_order_url)
    assert dns.served(f"_acme-challenge.{platform.server_name}", "TXT") == set()
    assert_each_email_once(smtp, {platform: ["delivery", "ready"]})
    assert_events_once(platform)
    assert_nothing_owed_twice(platform)
