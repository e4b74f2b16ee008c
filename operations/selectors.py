"""Reads of the fleet for /metrics, /readyz and the admin's first page: aggregates only
(a few GROUP BY and COUNT ... FILTER statements), never a row per platform."""

import statistics
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db.models import Case, Count, Exists, Min, OuterRef, Q, Sum, Value, When

from certificates.models import CertificateOrder
from operations.models import Heartbeat
from outbox.models import OwedStatus
from provisioning.models import Domain, Platform, PlatformState

# Cumulative windows of time left before a certificate expires.
EXPIRY_WITHIN_DAYS = (1, 7, 14, 30)
RENEWAL_STATES = ("none", "under_way")


def platform_stuck_after() -> dict[str, int]:
    """Seconds a platform may stay in each state before it counts as stuck. The one place
    these thresholds are read (they are moving into the table of states)."""
    return dict(settings.PLATFORM_STUCK_AFTER)


def platform_stuck_condition(*, now: datetime) -> Q:
    condition = Q(pk__in=[])
    for state, seconds in platform_stuck_after().items():
        condition |= Q(state=state, state_changed_at__lt=now - timedelta(seconds=seconds))
    return condition


def platform_counts(*, now: datetime) -> dict[str, dict[str, int]]:
    """{"state": {state: n}, "stuck": {state: n}, "dns_state": {dns_state: n}}, of the
    states present. Each is one index-only scan: COUNT(*) over indexed columns alone
    ((state, state_changed_at), and dns_state), never a read of the rows."""
    by_state = (
        Platform.objects.order_by()
        .values_list("state")
        .annotate(total=Count("*"), stuck=Count("state", filter=platform_stuck_condition(now=now)))
    )
    by_dns = Platform.objects.order_by().values_list("dns_state").annotate(total=Count("*"))
    return {
        "state": {state: total for state, total, _ in by_state},
        "stuck": {state: stuck for state, _, stuck in by_state if stuck},
        "dns_state": dict(by_dns),
    }


def platforms_failed_since(*, since: datetime) -> int:
    return Platform.objects.filter(state=PlatformState.FAILED, state_changed_at__gte=since).count()


def owed_work_counts(model, *, now: datetime) -> dict:
    """Rows of an outbox (jobs, emails, ...) still owed or failed; done rows, the bulk of
    the table, are not read (the (status, due_at) index skips them)."""
    due = Q(status=OwedStatus.PENDING, due_at__lte=now)
    return model.objects.filter(
        status__in=[OwedStatus.PENDING, OwedStatus.RUNNING, OwedStatus.FAILED]
    ).aggregate(
        pending=Count("pk", filter=Q(status=OwedStatus.PENDING)),
        running=Count("pk", filter=Q(status=OwedStatus.RUNNING)),
        failed=Count("pk", filter=Q(status=OwedStatus.FAILED)),
        due=Count("pk", filter=due),
        retrying=Count("pk", filter=Q(status=OwedStatus.PENDING) & ~Q(last_error="")),
        oldest_due=Min("due_at", filter=due),
    )


def certificate_counts(*, now: datetime) -> dict:
    """{"by_status": {status: n}, "expired": n, "expiring": {(days, renewal): n}}, the
    expiring ones counted within each of EXPIRY_WITHIN_DAYS (cumulative).

    A certificate is being renewed when a newer order for the same server name exists
    that has not failed: what renewal will create, so the figures hold once it lands.
    Every statement reads the (status, not_after) index, the last one also looks the
    newer orders up (server_name index) for the certificates expiring soon only."""
    issued = Q(status=CertificateOrder.Status.ISSUED)
    by_status = CertificateOrder.objects.order_by().values_list("status").annotate(total=Count("*"))
    # 0: expired; n: expires within n days (the smallest n).
    window = Case(
        When(not_after__lte=now, then=Value(0)),
        *[
            When(not_after__lte=now + timedelta(days=days), then=Value(days))
            for days in EXPIRY_WITHIN_DAYS
        ],
    )
    widest = now + timedelta(days=max(EXPIRY_WITHIN_DAYS))
    soon = CertificateOrder.objects.filter(issued, not_after__lte=widest).order_by()
    by_window = soon.annotate(window=window).values_list("window").annotate(total=Count("*"))
    newer_order = CertificateOrder.objects.filter(
        server_name=OuterRef("server_name"), created_at__gt=OuterRef("created_at")
    ).exclude(status=CertificateOrder.Status.FAILED)
    renewing = dict(
        soon.filter(Exists(newer_order), not_after__gt=now)
        .annotate(window=window)
        .values_list("window")
        .annotate(total=Count("*"))
    )
    expiring = {(days, state): 0 for days in EXPIRY_WITHIN_DAYS for state in RENEWAL_STATES}
    expired = 0
    for soonest, total in by_window:
        if soonest == 0:
            expired = total
            continue
        for days in EXPIRY_WITHIN_DAYS:
            if soonest <= days:
                expiring[days, "none"] += total - renewing.get(soonest, 0)
                expiring[days, "under_way"] += renewing.get(soonest, 0)
    return {"by_status": dict(by_status), "expired": expired, "expiring": expiring}


def heartbeats() -> dict[str, datetime]:
    return dict(Heartbeat.objects.values_list("name", "at"))


def orders_by_day(*, today, days: int = 30) -> list[dict]:
    """[{"day", "orders", "median_to_ready" (seconds or None)}] for the last `days` days,
    the oldest first, a day without orders included."""
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=UTC)
    rows = Platform.objects.filter(created_at__gte=start).values_list("created_at", "ready_at")
    by_day = {first + timedelta(days=n): ([], []) for n in range(days)}
    for created_at, ready_at in rows:
        orders, to_ready = by_day.get(created_at.date(), (None, None))
        if orders is None:
            continue
        orders.append(created_at)
        if ready_at is not None:
            to_ready.append((ready_at - created_at).total_seconds())
    return [
        {
            "day": day,
            "orders": len(orders),
            "median_to_ready": statistics.median(to_ready) if to_ready else None,
        }
        for day, (orders, to_ready) in by_day.items()
    ]


def domain_counts() -> dict:
    """Mail domains by state, and their broken required records, in one statement."""
    rows = (
        Domain.objects.filter(removed_at=None)
        .values("state")
        .annotate(count=Count("pk"), bad=Sum("records_bad"))
    )
    return {
        "by_state": {row["state"]: row["count"] for row in rows},
        "records_bad": sum(row["bad"] or 0 for row in rows),
    }
