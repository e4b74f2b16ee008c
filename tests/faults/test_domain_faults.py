"""Fault 4 for the customer's mail domains: the DNS primary down while DNS Assist writes a
domain's records, under the real worker and beat. The job is retried with backoff; once BIND
is back the records are written once, the domain becomes active and the records email is
never sent (DNS Assist needs none)."""

from collections import Counter

import pytest

from provisioning.models import Domain, Job, Platform
from provisioning.services import platform_order
from tests.factories import AccountFactory
from tests.faults.helpers import Customer, wait_until

pytestmark = pytest.mark.postgres


def test_dns_primary_down_during_dns_assist_of_a_domain(portal, smtp, dns, settings):
    settings.DNS_TIMEOUT = 1
    account = AccountFactory(zones=[dns.zone], language="en")
    customer = Customer(account, smtp)
    portal.start_beat()
    portal.start_worker(JOB_MAX_ATTEMPTS="6")
    platform = platform_order(account=account, actor="test")
    customer.email(platform, "delivery")
    # Past its five steps: ready, its server name's addresses served (as step 3 left them).
    Platform.objects.filter(pk=platform.pk).update(
        state="ready", domain=dns.zone, server_name=f"mail.{dns.zone}"
    )
    platform.refresh_from_db()
    dns.set_records(platform.server_name, "A", [platform.ipv4])
    dns.set_records(platform.server_name, "AAAA", [platform.ipv6])
    before = dns.records()

    dns.stop()
    response = customer.client.post(
        f"/platforms/{platform.service}/domains/",
        {
            "domain": dns.zone,
            "mode": "non_authoritative",
            "relay_host": f"mx.{dns.zone}",
            "dns_assist": "on",
        },
    )
    assert response.status_code == 302

    def assist_job() -> Job:
        return Job.objects.filter(platform=platform, kind="domain_assist").last()

    wait_until(lambda: assist_job() and assist_job().attempts >= 2, what="two failed attempts")
    job = assist_job()
    assert job.status in ("pending", "running")
    assert "did not answer" in job.last_error or "refused" in job.last_error, job.last_error
    assert Domain.objects.get(platform=platform).assist_status == "to_plan"  # nothing lost
    dns.start()

    wait_until(
        lambda: Domain.objects.get(platform=platform).state == "active",
        timeout=60,
        what="domain active",
    )
    domain = Domain.objects.get(platform=platform)
    assert domain.assist_status == "written"
    assert dns.served(dns.zone, "MX") == {f"10 mx.{dns.zone}.", f"10 {platform.server_name}."}
    assert dns.served(f"_autodiscover._tcp.{dns.zone}", "SRV") == {
        f"0 0 443 {platform.server_name}."
    }
    for key in domain.dkim_keys.all():
        assert dns.served(f"{key.selector}._domainkey.{dns.zone}", "TXT") == {
            f"v=DKIM1; k=rsa; p={key.public_key}"
        }
    after = dns.records()
    assert len(after - before) == 5, after - before  # MX, SRV, the merged SPF, 2 DKIM
    assert before - after == {("@", "TXT", '"v=spf1 mx -all"')}  # merged into, not doubled
    events = Counter(platform.events.values_list("kind", flat=True))
    assert events["domain_assisted"] == 1 and events["domain_active"] == 1
    assert assist_job().status == "done"
    assert not domain.emails.exists()  # DNS Assist wrote them: no records email
