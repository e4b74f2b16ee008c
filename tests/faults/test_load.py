"""Load: 300 orders placed through the API and driven to ready by one worker (and beat),
with DNS Assist on the real BIND9 and the internal CA; the customers' forms and codes go
through the service layer, each code read from the validation email received over SMTP.
Nothing may be lost or done twice."""

import re
import time
from collections import Counter

import pytest
from django.db.models import Count
from django.test import Client

from certificates.models import CertificateOrder
from notifications.models import Email
from provisioning.models import Job, Platform, PlatformEvent
from provisioning.services import platform_configure, platform_dcv_submit
from tests.conftest import text_body
from tests.factories import AccountFactory
from tests.faults.helpers import ONCE_EVENTS, assert_each_email_once

pytestmark = pytest.mark.postgres

ORDERS = 300
BUDGET = 170  # seconds, ordering to the last ready email
FINALISATION_SECONDS = 3


def test_300_orders_reach_ready_on_one_worker(portal, smtp, dns, settings):
    settings.ORDER_API_TOKEN = "load-test-token"
    settings.FINALISATION_DELAY = FINALISATION_SECONDS
    settings.CERT_KEY_TYPE = "ec-p256"  # a P-256 key pair costs the worker far less than RSA
    accounts = [
        AccountFactory(zones=[dns.zone], language="fr"),
        AccountFactory(zones=[dns.sub_zone], language="en"),
    ]
    updates_before = dns.updates_received()
    portal.start_beat(OUTBOX_REDISPATCH_AFTER="60")
    worker = portal.start_worker(OUTBOX_REDISPATCH_AFTER="60")
    api = Client(headers={"Authorization": "Bearer load-test-token"})
    started = time.monotonic()

    services = []
    for n in range(ORDERS):
        account = accounts[n % 2]
        response = api.post("/api/orders/", {"account": account.nic}, "application/json")
        assert response.status_code == 201, response.content
        services.append(response.json()["service"])
    ordered = time.monotonic() - started

    # The customers: each acts on the email they receive, once.
    done: set[str] = set()
    seen = 0
    while Platform.objects.filter(state="ready").count() < ORDERS:
        assert time.monotonic() - started < BUDGET, progress()
        messages = list(smtp.messages[seen:])
        seen += len(messages)
        rows = Email.objects.in_bulk([m["Message-ID"] for m in messages], field_name="message_id")
        for message in messages:
            email = rows[message["Message-ID"]]
            if email.message_id in done:
                continue
            done.add(email.message_id)
            platform = Platform.objects.get(pk=email.target_id)
            if email.kind == "delivery":
                zone = platform.account.zones.get().name
                platform_configure(
                    platform_id=platform.pk,
                    actor="customer:load",
                    subdomain="exchange",
                    domain=f"{platform.service}.{zone}",
                    validation_email=f"admin@{platform.service}.{zone}",
                    dns_assist=True,
                )
            elif email.kind == "dcv":
                code = re.search(r"^\s{4}(\S+)\s*$", text_body(message), re.M).group(1)
                result = platform_dcv_submit(
                    platform_id=platform.pk, code=code, actor="customer:load"
                )
                assert result.outcome == "valid"
        time.sleep(0.2)
    smtp.wait_for(3 * ORDERS, timeout=BUDGET - (time.monotonic() - started))
    elapsed = time.monotonic() - started
    print(f"\n{ORDERS} orders placed in {ordered:.1f} s, all ready after {elapsed:.1f} s")

    # Nothing lost: every platform ready, with its three emails, each once.
    platforms = list(Platform.objects.filter(service__in=services))
    assert len(platforms) == ORDERS and {p.state for p in platforms} == {"ready"}
    assert_each_email_once(smtp, {p: ["delivery", "dcv", "ready"] for p in platforms})

    # Nothing doubled: events, jobs, certificates, DNS records, addresses.
    doubled = (
        PlatformEvent.objects.filter(kind__in=ONCE_EVENTS)
        .values("platform", "kind")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not doubled.exists(), list(doubled[:5])
    jobs = Counter(Job.objects.exclude(kind="dns_check").values_list("kind", "status"))
    assert jobs == Counter(
        {
            **{
                (kind, "done"): ORDERS
                for kind in ("deliver", "dns_assist", "certificate", "finalise")
            },
            ("certificate_renew", "pending"): ORDERS,  # each certificate's renewal, owed
        }
    )
    issued = CertificateOrder.objects.filter(status="issued")
    assert issued.count() == ORDERS
    assert sorted(issued.values_list("pk", flat=True)) == sorted(
        p.certificate_id for p in platforms
    )
    assert dns.updates_received() - updates_before == ORDERS
    served = dns.records(dns.zone) | dns.records(dns.sub_zone)
    for platform in platforms:
        relative = platform.server_name.removesuffix(f".{platform.account.zones.get().name}")
        assert (relative, "A", platform.ipv4) in served
        assert (relative, "AAAA", platform.ipv6) in served
    exchange = [r for r in served if r[0].startswith("exchange.") and r[1] in ("A", "AAAA")]
    assert len(exchange) == 2 * ORDERS
    assert len({p.ipv4 for p in platforms}) == len({p.ipv6 for p in platforms}) == ORDERS
    assert worker.running and len(portal.workers) == 1


def progress() -> str:
    states = Counter(Platform.objects.values_list("state", flat=True))
    owed = Counter(Job.objects.exclude(status="done").values_list("kind", "status"))
    emails = Counter(Email.objects.values_list("kind", "status"))
    return f"not all ready in {BUDGET} s: {dict(states)}, jobs {dict(owed)}, emails {dict(emails)}"
