"""The portal's own metrics, computed from the database when Prometheus scrapes.

A few aggregate statements (operations.selectors), cached METRICS_CACHE_SECONDS in
Django's cache so that several Prometheus servers, or a scrape retried, cost one
computation. Series are per state or per bucket, never per platform: 100,000 platforms
are a few dozen series.

To export more (domains by state, webhook deliveries failing...), add a function to
SOURCES that returns families, or an outbox model to OWED_WORK.
"""

from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from certificates.models import CertificateOrder
from notifications.models import Email
from operations import selectors
from provisioning.models import DnsState, DomainState, Job, PlatformState
from webhooks.models import WebhookDelivery

CACHE_KEY = "operations:metrics"

# Outboxes: the `kind` label of the portal_owed_work_* series.
OWED_WORK = {"job": Job, "email": Email, "webhook": WebhookDelivery}


def platform_families(now) -> Iterable[GaugeMetricFamily]:
    rows = selectors.platform_counts(now=now)
    by_state = GaugeMetricFamily("portal_platforms", "Platforms by state.", labels=["state"])
    by_dns = GaugeMetricFamily(
        "portal_platforms_dns", "Platforms by DNS state.", labels=["dns_state"]
    )
    stuck = GaugeMetricFamily(
        "portal_platforms_stuck",
        "Platforms in their state for longer than PLATFORM_STUCK_AFTER allows, by state.",
        labels=["state"],
    )
    states = {state: 0 for state in PlatformState.values}
    dns_states = {state: 0 for state in DnsState.values}
    stuck_states = dict.fromkeys(selectors.platform_stuck_after(), 0)
    stuck_states.update(rows["stuck"])
    states.update(rows["state"])
    dns_states.update(rows["dns_state"])
    for family, counts in ((by_state, states), (by_dns, dns_states), (stuck, stuck_states)):
        for label, value in counts.items():
            family.add_metric([label], value)
    return [by_state, by_dns, stuck]


def owed_work_families(now) -> Iterable[GaugeMetricFamily]:
    rows = GaugeMetricFamily(
        "portal_owed_work",
        "Rows of an outbox (job, email) not done, by status: pending, running, failed.",
        labels=["kind", "status"],
    )
    due = GaugeMetricFamily(
        "portal_owed_work_due", "Pending rows whose time has come.", labels=["kind"]
    )
    retrying = GaugeMetricFamily(
        "portal_owed_work_retrying",
        "Pending rows whose last attempt failed (to be retried after a backoff).",
        labels=["kind"],
    )
    oldest = GaugeMetricFamily(
        "portal_owed_work_oldest_due_age_seconds",
        "How long the oldest pending row has been due (0 when none is).",
        labels=["kind"],
    )
    for kind, model in OWED_WORK.items():
        counts = selectors.owed_work_counts(model, now=now)
        for status in ("pending", "running", "failed"):
            rows.add_metric([kind, status], counts[status])
        due.add_metric([kind], counts["due"])
        retrying.add_metric([kind], counts["retrying"])
        age = (now - counts["oldest_due"]).total_seconds() if counts["oldest_due"] else 0
        oldest.add_metric([kind], age)
    lease = GaugeMetricFamily(
        "portal_job_lease_seconds",
        "JOB_LEASE_SECONDS: how long a worker holds a job before another may take it over.",
        value=settings.JOB_LEASE_SECONDS,
    )
    return [rows, due, retrying, oldest, lease]


def certificate_families(now) -> Iterable[GaugeMetricFamily]:
    counts = selectors.certificate_counts(now=now)
    by_status = GaugeMetricFamily(
        "portal_certificates", "Certificate orders by status.", labels=["status"]
    )
    for status in CertificateOrder.Status.values:
        by_status.add_metric([status], counts["by_status"].get(status, 0))
    expired = GaugeMetricFamily(
        "portal_certificates_expired",
        "Issued certificates past their expiry.",
        value=counts["expired"],
    )
    expiring = GaugeMetricFamily(
        "portal_certificates_expiring",
        "Issued certificates expiring within `within_days` days (cumulative), by whether a "
        "newer order for the same name is under way (renewal) or none is.",
        labels=["within_days", "renewal"],
    )
    for (days, renewal), value in sorted(counts["expiring"].items()):
        expiring.add_metric([str(days), renewal], value)
    return [by_status, expired, expiring]


def domain_families(now) -> Iterable[GaugeMetricFamily]:
    counts = selectors.domain_counts()
    by_state = GaugeMetricFamily(
        "portal_domains", "Customers' mail domains by state.", labels=["state"]
    )
    for state in DomainState.values:
        by_state.add_metric([state], counts["by_state"].get(state, 0))
    broken = GaugeMetricFamily(
        "portal_domain_records_broken",
        "Required records of mail domains the last check found missing or wrong.",
        value=counts["records_bad"],
    )
    return [by_state, broken]


def sweep_families(now) -> Iterable[GaugeMetricFamily]:
    last = GaugeMetricFamily(
        "portal_sweep_last_run_timestamp_seconds",
        "When a worker last finished each periodic task of beat (a sweep of owed work), Unix time.",
        labels=["task"],
    )
    for name, at in sorted(selectors.heartbeats().items()):
        last.add_metric([name], at.timestamp())
    return [last]


SOURCES: list[Callable] = [
    platform_families,
    owed_work_families,
    certificate_families,
    sweep_families,
    domain_families,
]


def fleet_families() -> list[GaugeMetricFamily]:
    families = cache.get(CACHE_KEY)
    if families is None:
        now = timezone.now()
        families = [family for source in SOURCES for family in source(now)]
        cache.set(CACHE_KEY, families, settings.METRICS_CACHE_SECONDS)
    return families


class FleetCollector(Collector):
    def collect(self):
        return fleet_families()
