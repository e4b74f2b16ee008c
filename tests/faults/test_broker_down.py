"""Fault 2: Redis stopped while a customer submits the setup form and while a validation
code is checked. The pages answer as usual (the owed work is rows in PostgreSQL); once Redis
is back, empty, the worker and beat reconnect by themselves and beat's sweep sends what is
owed: nobody intervenes."""

import time

import pytest

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
    wait_until,
)

pytestmark = pytest.mark.postgres

# A page may take this long while the broker is away (publishing is retried twice, briefly).
PAGE_SECONDS = 3


def test_pages_answer_while_redis_is_down_and_the_work_resumes_when_it_is_back(
    portal, smtp, dns, redis_server, settings
):
    settings.FINALISATION_DELAY = 2
    account = AccountFactory(zones=[dns.zone], language="fr")
    customer = Customer(account, smtp)
    portal.start_beat()
    portal.start_worker()
    platform = platform_order(account=account, actor="test")
    customer.email(platform, "delivery")

    # The setup form, Redis down: the page succeeds, the jobs wait in the database.
    redis_server.stop()
    started = time.monotonic()
    page = customer.configure(platform, domain=dns.zone, dns_assist=True)
    assert time.monotonic() - started < PAGE_SECONDS
    assert page.status_code == 200
    assert page.redirect_chain[-1][0].endswith("?configured=1")
    platform.refresh_from_db()
    assert platform.state == "configured"
    owed = Job.objects.filter(platform=platform, status="pending")
    assert sorted(owed.values_list("kind", flat=True)) == ["certificate", "dns_assist"]
    assert not owed.filter(dispatched_at__isnull=False).exists()  # nothing reached a broker
    time.sleep(2)  # the worker and beat find no broker meanwhile
    assert Platform.objects.get(pk=platform.pk).state == "configured"

    # Redis back, empty: the sweep dispatches the owed jobs; the validation email comes.
    redis_server.start()
    customer.email(platform, "dcv", timeout=60)

    # The validation code, Redis down: the page says the code is valid.
    redis_server.stop()
    started = time.monotonic()
    page = customer.validate(platform)
    assert time.monotonic() - started < PAGE_SECONDS
    assert page.status_code == 200
    platform.refresh_from_db()
    assert platform.state == "finalising"

    # Redis back: the finalisation, due meanwhile, is swept up; the ready email comes.
    redis_server.start()
    customer.email(platform, "ready", timeout=60)

    platform.refresh_from_db()
    assert platform.state == "ready"
    wait_until(lambda: Platform.objects.get(pk=platform.pk).dns_state == "verified")
    assert_each_email_once(smtp, {platform: ["delivery", "dcv", "ready"]})
    assert_events_once(platform)
    assert_dns_records_once(dns, platform)
    assert_certificate_once(platform)
    assert_nothing_owed_twice(platform)
    assert all(worker.running for worker in portal.workers)  # the same worker and beat
    assert all(beat.running for beat in portal.beats)
