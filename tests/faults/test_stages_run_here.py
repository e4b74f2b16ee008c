"""Work run next by the task that owed it (provisioning.tasks, outbox.owed.kept_here): the
delivery email after the delivery, the validation email after the certificate order, the
ready email after finalisation, and the first DNS check after DNS Assist. No task of its
own is sent for it: the task of the stage before claims it through the outbox and runs it.

Each test catches a real worker in the middle of such a piece of work (the SMTP server
holds DATA, the DNS resolver holds the check's query), shows that it runs in the task of
the stage before (the worker received no task for it), kills the worker's whole process
group with SIGKILL and starts a new one: the lease runs out, the sweep sends the work
again, and the platform reaches the right state with nothing lost and nothing done twice."""

import pytest

from notifications.models import Email
from provisioning.models import Job, Platform
from provisioning.services import platform_order
from tests.factories import AccountFactory
from tests.faults.dns_proxy import HoldingResolver
from tests.faults.helpers import (
    Customer,
    assert_certificate_once,
    assert_dns_records_once,
    assert_each_email_once,
    assert_events_once,
    assert_nothing_owed_twice,
    end_email_leases,
    wait_until,
)

pytestmark = pytest.mark.postgres

RUN_JOB = "provisioning.tasks.run_job"
SEND_EMAIL = "notifications.tasks.send_email"


def job(platform: Platform, kind: str) -> Job:
    return Job.objects.get(platform=platform, kind=kind)


def email(platform: Platform, kind: str) -> Email:
    return Email.objects.get(target_id=platform.pk, kind=kind)


def kill_while_sending_here(
    portal, smtp, platform: Platform, *, kind: str, after: str, send_email_tasks: int
) -> None:
    """The SMTP server holds the `kind` email's DATA, sent by the task of the `after` job
    (done): the worker received no send_email task since it had `send_email_tasks`. Kill
    it there; a new worker sends the email once the sweep gives it back."""
    wait_until(lambda: smtp.holding, what=f"the {kind} email held by the SMTP server")
    assert email(platform, kind).status == "running"
    assert job(platform, after).status == "done"
    assert len(portal.worker.received(SEND_EMAIL)) == send_email_tasks
    portal.worker.kill()
    wait_until(lambda: not smtp.holding, what="the SMTP server to see the client gone")
    smtp.release()
    assert end_email_leases() == 1  # the sweep would give it back a minute later
    portal.start_worker()


def test_worker_killed_sending_the_email_its_stage_queued(portal, smtp, dns, settings):
    """Delivery, certificate order and finalisation each queue an email that their task
    sends next. A worker killed while sending it: a new worker sends it, once."""
    settings.FINALISATION_DELAY = 0  # finalisation owed at once: its task runs it
    account = AccountFactory(zones=[dns.zone], language="en")
    customer = Customer(account, smtp)
    portal.start_beat()
    smtp.hold()
    portal.start_worker()

    # The delivery email, sent by the delivery's task.
    platform = platform_order(account=account, actor="test")
    kill_while_sending_here(
        portal, smtp, platform, kind="delivery", after="deliver", send_email_tasks=0
    )
    assert Platform.objects.get(pk=platform.pk).state == "awaiting_setup"
    customer.email(platform, "delivery")

    # The validation email, sent by the certificate order's task (DNS Assist done beside).
    sent = len(portal.worker.received(SEND_EMAIL))  # the delivery email, sent again
    smtp.hold()
    assert customer.configure(platform, domain=dns.zone, dns_assist=True).status_code == 200
    wait_until(lambda: Platform.objects.get(pk=platform.pk).dns_state == "verified")
    kill_while_sending_here(
        portal, smtp, platform, kind="dcv", after="certificate", send_email_tasks=sent
    )
    assert Platform.objects.get(pk=platform.pk).state == "certificate_pending"

    # The ready email, sent by finalisation's task.
    customer.email(platform, "dcv")  # sent again by the new worker
    sent = len(portal.worker.received(SEND_EMAIL))
    smtp.hold()
    assert customer.validate(platform).status_code == 200
    kill_while_sending_here(
        portal, smtp, platform, kind="ready", after="finalise", send_email_tasks=sent
    )
    assert Platform.objects.get(pk=platform.pk).state == "ready"
    customer.email(platform, "ready")

    platform.refresh_from_db()
    assert platform.state == "ready"
    assert_each_email_once(smtp, {platform: ["delivery", "dcv", "ready"]})
    assert list(Email.objects.values_list("attempts", flat=True)) == [2, 2, 2]
    assert_events_once(platform)
    assert_dns_records_once(dns, platform)
    assert_certificate_once(platform)
    assert_nothing_owed_twice(platform)
    assert len(portal.workers) == 4
    # Each job ran once: the workers were killed sending emails, their jobs done.
    assert not platform.jobs.filter(attempts__gt=1).exists()


def test_worker_killed_in_the_dns_check_after_dns_assist(portal, smtp, dns, settings):
    """DNS Assist's task checks the records it wrote at once. A worker killed while that
    check waits for the resolver: a new worker checks again; the records are written once,
    verified once."""
    resolver = HoldingResolver(upstream=(dns.host, dns.port)).start()
    try:
        settings.DNS_CHECK_RESOLVERS = [resolver.address]
        settings.DNS_TIMEOUT = 20  # the held query outlasts the kill
        settings.FINALISATION_DELAY = 1
        account = AccountFactory(zones=[dns.zone], language="en")
        customer = Customer(account, smtp)
        updates_before = dns.updates_received()
        portal.start_beat()
        portal.start_worker()
        platform = platform_order(account=account, actor="test")
        customer.email(platform, "delivery")

        resolver.hold()
        assert customer.configure(platform, domain=dns.zone, dns_assist=True).status_code == 200
        wait_until(
            lambda: resolver.holding and Job.objects.filter(
                platform=platform, kind="dns_check", status="running"
            ).exists(),
            what="the DNS check held by the resolver",
        )  # fmt: skip
        customer.email(platform, "dcv")  # the certificate went on meanwhile
        platform.refresh_from_db()
        assert platform.dns_state == "assisted"
        assert job(platform, "dns_assist").status == "done"
        # deliver, dns_assist, certificate: the check was no task of its own.
        assert len(portal.worker.received(RUN_JOB)) == 3
        assert job(platform, "dns_check").attempts == 1
        assert dns.served(platform.server_name, "A") == {platform.ipv4}
        portal.worker.kill()
        resolver.release()

        portal.start_worker()
        wait_until(lambda: Platform.objects.get(pk=platform.pk).dns_state == "verified")
        assert customer.validate(platform).status_code == 200
        customer.email(platform, "ready")
    finally:
        resolver.stop()

    platform.refresh_from_db()
    assert platform.state == "ready"
    check = job(platform, "dns_check")
    assert (check.status, check.attempts) == ("done", 2)
    assert dns.updates_received() - updates_before == 1  # DNS Assist wrote once
    assert_dns_records_once(dns, platform)
    assert_each_email_once(smtp, {platform: ["delivery", "dcv", "ready"]})
    assert_events_once(platform)
    assert_certificate_once(platform)
    assert_nothing_owed_twice(platform)
