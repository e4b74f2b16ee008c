"""Helpers shared by tests: the owed work run in the test process, the way a worker would
(until none is due), platforms at a given stage, the admin changelists' queries and plans."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.models import Email
from notifications.tasks import send_email
from provisioning.models import Job, Platform
from provisioning.services import platform_configure, platform_order
from provisioning.tasks import run_job


def work_off(max_rounds: int = 50) -> None:
    for _ in range(max_rounds):
        now = timezone.now()
        jobs = _due_ids(Job, now)
        emails = _due_ids(Email, now)
        if not jobs and not emails:
            return
        for job_id in jobs:
            run_job(job_id)
        for email_id in emails:
            send_email(email_id)
    raise AssertionError("work still owed after many rounds")


def delivered_platform(account) -> Platform:
    """A platform ordered for the account and delivered (awaiting setup)."""
    platform = platform_order(account=account, actor="test")
    work_off()
    platform.refresh_from_db()
    return platform


def _due_ids(model, now) -> list[int]:
    return list(
        model.objects.filter(status="pending", due_at__lte=now).values_list("pk", flat=True)
    )


def validating_platform(account, *, domain: str) -> Platform:
    """A platform delivered and set up without DNS Assist (admin@domain validates), its
    owed work done: it waits for its validation code."""
    platform = delivered_platform(account)
    platform_configure(
        platform_id=platform.pk,
        actor="test",
        subdomain="mail",
        domain=domain,
        validation_email=f"admin@{domain}",
        dns_assist=False,
    )
    work_off()
    platform.refresh_from_db()
    return platform


def changelist_queries(client, url: str, params: dict) -> int:
    """How many queries an admin changelist ran."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params).status_code == 200
    return len(queries)


def changelist_plans(
    client, url: str, params: dict, *, sql_with: str, priced_out: tuple[str, ...]
) -> list[str]:
    """The plans of the queries an admin changelist sent that contain `sql_with`, with the
    given ways priced out (enable_seqscan...): whether an index CAN serve them (on a few
    rows the planner would rather read them all; at 100,000 platforms it chooses the
    indexes itself: benchmarks/README.md, 3. Admin). PostgreSQL only."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params).status_code == 200
    sent = [
        q["sql"] for q in queries if sql_with in q["sql"] and not q["sql"].startswith("EXPLAIN")
    ]
    plans = []
    with connection.cursor() as cursor:
        for way in priced_out:
            cursor.execute(f"SET LOCAL enable_{way} = off")
        for sql in sent:
            cursor.execute(f"EXPLAIN {sql}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


def assert_search_reads_indexes(client, url: str, query: str, indexes: set[str]) -> None:
    """The search's count and page (the queries with LIKE) can each be served by `indexes`
    rather than a scan of the table: sequential and plain index scans priced out."""
    plans = changelist_plans(
        client, url, {"q": query}, sql_with="LIKE", priced_out=("seqscan", "indexscan")
    )
    assert len(plans) == 2  # the count, the page
    for plan in plans:
        assert "Seq Scan" not in plan, plan
        for index in indexes:
            assert index in plan, plan
