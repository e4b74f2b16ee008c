"""/metrics: closed to strangers, and the fleet's figures as the database has them."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from operations import services
from provisioning.models import Domain

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def open_metrics(settings):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]


def scrape(client) -> dict:
    """{(name, (("label", "value"), ...)): value} of one scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[name, tuple(sorted(labels.items()))]


def test_closed_without_token_or_allowed_address(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    response = client.get("/metrics")
    assert response.status_code == 403
    assert b"portal_" not in response.content


def test_bearer_token_opens_it(client, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-it"})
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200
    assert b"portal_platforms{" in right.content


def test_allowed_network_opens_it(client, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = ["192.0.2.0/24", "::1/128"]
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="198.51.100.7").status_code == 401


def test_platforms_by_state_dns_state_and_stuck(client, fleet, settings, open_metrics):
    settings.PLATFORM_STUCK_AFTER = {"configured": 600, "awaiting_setup": 3 * 3600, "failed": 0}
    long_ago = timezone.now() - timedelta(hours=2)
    fleet.platform("configured", dns_state="mismatch", since=long_ago)
    fleet.platform("configured", dns_state="verified")
    fleet.platform("awaiting_setup", since=long_ago)
    fleet.platform("ready", dns_state="verified", since=long_ago)
    fleet.platform("failed", since=long_ago)
    samples = scrape(client)
    assert value(samples, "portal_platforms", state="configured") == 2
    assert value(samples, "portal_platforms", state="ready") == 1
    assert value(samples, "portal_platforms", state="cancelled") == 0
    assert value(samples, "portal_platforms_dns", dns_state="verified") == 2
    assert value(samples, "portal_platforms_dns", dns_state="mismatch") == 1
    assert value(samples, "portal_platforms_stuck", state="configured") == 1
    assert value(samples, "portal_platforms_stuck", state="awaiting_setup") == 0
    assert value(samples, "portal_platforms_stuck", state="failed") == 1
    # A state without a threshold (ready) is never stuck, and has no series.
    assert ("portal_platforms_stuck", (("state", "ready"),)) not in samples


def test_owed_work_due_oldest_and_failed(client, fleet, open_metrics):
    platform = fleet.platform("configured")
    fleet.job(platform, due_in=-900)  # due for 15 minutes
    fleet.job(platform, due_in=3600, status="pending")  # owed later: not due
    fleet.job(platform, status="failed")
    fleet.job(platform, status="done")
    fleet.email(platform, due_in=-30, last_error="SMTP 451")
    fleet.email(platform, status="failed")
    fleet.email(platform, status="failed")
    samples = scrape(client)
    assert value(samples, "portal_owed_work", kind="job", status="pending") == 2
    assert value(samples, "portal_owed_work", kind="job", status="failed") == 1
    assert value(samples, "portal_owed_work_due", kind="job") == 1
    assert 900 <= value(samples, "portal_owed_work_oldest_due_age_seconds", kind="job") < 960
    assert value(samples, "portal_owed_work", kind="email", status="failed") == 2
    assert value(samples, "portal_owed_work_retrying", kind="email") == 1
    assert value(samples, "portal_owed_work_retrying", kind="job") == 0
    assert value(samples, "portal_job_lease_seconds") == 300


def test_certificates_by_status_and_time_left(client, fleet, open_metrics):
    fleet.certificate("a.example", expires_in_days=0.5)
    fleet.certificate("b.example", expires_in_days=10)
    fleet.certificate("c.example", expires_in_days=10)
    fleet.certificate("c.example", status="pending", age_days=1)  # c's renewal under way
    fleet.certificate("d.example", expires_in_days=10)
    fleet.certificate("d.example", status="failed", age_days=1)  # a failed one is none
    fleet.certificate("e.example", expires_in_days=90)
    fleet.certificate("f.example", expires_in_days=-3)
    samples = scrape(client)
    assert value(samples, "portal_certificates", status="issued") == 6
    assert value(samples, "portal_certificates", status="pending") == 1
    assert value(samples, "portal_certificates", status="failed") == 1
    assert value(samples, "portal_certificates_expired") == 1
    expiring = {
        (days, renewal): value(
            samples, "portal_certificates_expiring", within_days=days, renewal=renewal
        )
        for days in ("1", "7", "14", "30")
        for renewal in ("none", "under_way")
    }
    assert expiring == {
        ("1", "none"): 1,
        ("1", "under_way"): 0,
        ("7", "none"): 1,
        ("7", "under_way"): 0,
        ("14", "none"): 3,
        ("14", "under_way"): 1,
        ("30", "none"): 3,
        ("30", "under_way"): 1,
    }


def test_sweep_heartbeats(client, open_metrics):
    before = timezone.now().timestamp()
    services.heartbeat_record(name="provisioning.tasks.dispatch_due_jobs")
    samples = scrape(client)
    at = value(
        samples,
        "portal_sweep_last_run_timestamp_seconds",
        task="provisioning.tasks.dispatch_due_jobs",
    )
    assert before - 1 <= at <= timezone.now().timestamp()


def test_requests_and_database_timings_are_exported(client, open_metrics):
    client.get("/healthz")
    samples = scrape(client)
    names = {name for name, _ in samples}
    assert "django_http_requests_total_by_view_transport_method_total" in names
    assert "django_db_query_duration_seconds_count" in names


def test_figures_are_cached_a_few_seconds(client, fleet, settings, open_metrics):
    settings.METRICS_CACHE_SECONDS = 60
    fleet.platform("ready")
    assert value(scrape(client), "portal_platforms", state="ready") == 1
    fleet.platform("ready")
    assert value(scrape(client), "portal_platforms", state="ready") == 1
    cache.clear()
    assert value(scrape(client), "portal_platforms", state="ready") == 2


def test_a_scrape_costs_a_few_statements_whatever_the_fleet(
    client, fleet, open_metrics, django_assert_max_num_queries
):
    for state in ("ordered", "configured", "ready", "ready", "failed"):
        platform = fleet.platform(state)
        fleet.job(platform)
        fleet.email(platform)
        fleet.certificate(platform.service + ".example", expires_in_days=5)
    # platforms (by state with the stuck ones, by DNS state), jobs, emails, webhook
    # deliveries, certificates (by status, by time left, renewals under way), heartbeats,
    # mail domains
    with django_assert_max_num_queries(10):
        client.get("/metrics")


def test_mail_domains_by_state_and_broken_records(client, fleet, open_metrics):
    platform = fleet.platform("ready")
    Domain.objects.create(platform=platform, name="a.example", mode="authoritative")
    Domain.objects.create(platform=platform, name="b.example", mode="authoritative")
    Domain.objects.filter(name="b.example").update(state="broken", records_bad=2)
    Domain.objects.create(platform=platform, name="gone.example", mode="authoritative")
    Domain.objects.filter(name="gone.example").update(removed_at="2026-01-01T00:00Z")
    samples = scrape(client)
    assert value(samples, "portal_domains", state="pending_ownership") == 1
    assert value(samples, "portal_domains", state="broken") == 1
    assert value(samples, "portal_domains", state="active") == 0
    assert value(samples, "portal_domain_records_broken") == 2
