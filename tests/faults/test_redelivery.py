"""Fault 5: every task delivered twice. A proxy in front of Redis pushes each message twice
(tests/faults/redis_proxy.py), for the messages the web process, the worker and beat send:
every run of a job or an email is attempted twice, sometimes at the same moment by the two
pool processes. The claim on the outbox row lets one through; the other does nothing."""

from collections import Counter

import pytest

from provisioning.models import Platform
from provisioning.services import platform_order
from tests.factories import AccountFactory
from tests.faults.helpers import (
    Customer,
    assert_certificate_once,
    assert_dns_records_once,
    assert_each_email_once,
    assert_events_once,
    assert_nothing_owed_twice,
    wait_until,
)
from tests.faults.redis_proxy import DuplicatingProxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxy(redis_server):
    """Set up before the portal's processes (and so torn down after them)."""
    proxy = DuplicatingProxy(upstream_port=redis_server.port)
    proxy.start()
    yield proxy
    proxy.stop()


def test_every_task_delivered_twice_does_everything_once(proxy, portal, smtp, dns, settings):
    settings.FINALISATION_DELAY = 1
    portal.use_broker(proxy.url)
    portal.start_beat()
    portal.start_worker()
    assisted_account = AccountFactory(zones=[dns.zone], language="en")
    # Its own zone, inside the other account's: a zone of another account is refused.
    manual_account = AccountFactory(language="fr", zones=[dns.sub_zone])
    updates_before = dns.updates_received()

    assisted = platform_order(account=assisted_account, actor="test")
    manual = platform_order(account=manual_account, actor="test")
    assisted_customer = Customer(assisted_account, smtp)
    manual_customer = Customer(manual_account, smtp)
    assisted_customer.configure(assisted, domain=dns.zone, dns_assist=True)
    manual_customer.configure(manual, domain=dns.sub_zone, dns_assist=False)
    manual.refresh_from_db()
    manual_customer.email(manual, "dns_instructions")
    dns.set_records(manual.server_name, "A", [manual.ipv4], zone=dns.sub_zone)
    dns.set_records(manual.server_name, "AAAA", [manual.ipv6], zone=dns.sub_zone)
    assert assisted_customer.validate(assisted).status_code == 200
    assert manual_customer.validate(manual).status_code == 200
    for platform, customer in ((assisted, assisted_customer), (manual, manual_customer)):
        customer.email(platform, "ready")
        wait_until(lambda p=platform: Platform.objects.get(pk=p.pk).dns_state == "verified")

    # Every job and email message reached the worker twice.
    for task in ("provisioning.tasks.run_job", "notifications.tasks.send_email"):
        deliveries = Counter(portal.received(task))
        assert deliveries and set(deliveries.values()) == {2}, (task, deliveries)
    assert proxy.duplicated >= 20

    # Done once all the same.
    for platform in (assisted, manual):
        platform.refresh_from_db()
        assert platform.state == "ready"
        assert_events_once(platform)
        assert_dns_records_once(dns, platform)
        assert_certificate_once(platform)
        assert_nothing_owed_twice(platform)
    assert dns.updates_received() - updates_before == 3  # DNS Assist once, the customer twice
    assert_each_email_once(
        smtp,
        {
            assisted: ["delivery", "dcv", "ready"],
            manual: ["delivery", "dns_instructions", "dcv", "ready"],
        },
    )
