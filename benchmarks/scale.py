"""Scale: what the periodic and per-order database work costs with 1,000 to 100,000
platforms, the work due being the same each time.

For each size, a database cloned from the seeded template (benchmarks/seed.py: every
platform with its finished jobs, sent emails and timeline; 1 in 20 configured platforms
with a DNS check owed later, the finalising ones with their finalisation owed later), then
exactly --due DNS checks and --due emails made due now. Measured, in this process:

  - the job sweep (outbox.owed.take_due(Job), what provisioning.tasks.
    dispatch_due_jobs runs every OUTBOX_SWEEP_INTERVAL): it is also what selects the DNS
    checks due, among the many owed later;
  - the email sweep (take_due(Email));
  - the delivery of one new order (provisioning.services.platform_deliver: addresses
    from the pools, the delivery email);
  - one scrape of /metrics, its figures computed afresh (operations.metrics: the fleet's
    aggregates), with its database time from EXPLAIN ANALYZE (goal: under 100 ms at
    100,000 platforms);
  - the setup page's and the status page's reads, and the admin changelist's first page
    are measured by benchmarks/pages.py and benchmarks/admin.py at each size.

Each figure is the median of --repeat runs, with the buffers (8 kB pages) PostgreSQL
touched from EXPLAIN (ANALYZE, BUFFERS): a cost that follows the work due stays flat while
the table grows a hundredfold.

    benchmarks/run scale [--sizes 1000,10000,100000] [--due 20] [--repeat 15]
"""

import argparse
import re
import statistics
import sys
import time

from benchmarks import common


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--due", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    directory = common.run_dir("scale")
    figures = {"benchmark": "scale", **common.machine(), "args": vars(args), "sizes": {}}
    print(f"Scale benchmark: sizes {sizes}, {args.due} DNS checks and {args.due} emails due")
    for size in sizes:
        common.fresh_database(f"{common.DB_PREFIX}_scale_{size}", platforms=size)
    common.environment(
        database_url=f"{common.PG_SERVER}/{common.DB_PREFIX}_scale_{sizes[0]}",
        directory=directory,
        extra={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": "9"},
    )
    import django

    django.setup()
    from django.db import connection

    for size in sizes:
        connection.close()
        connection.settings_dict["NAME"] = f"{common.DB_PREFIX}_scale_{size}"
        figures["sizes"][size] = measure(size, args.due, args.repeat)
    figures["verdict"] = verdict(figures, sizes)
    common.save(directory, "scale", figures)
    print(f"  plans in {directory / 'scale.json'}")
    return 0


def _timed(call, repeat: int, reset=None) -> float:
    times = []
    for _ in range(repeat):
        if reset:
            reset()
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def _explain(sql: str, params=()) -> tuple[list[str], int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        plan = [row[0] for row in cursor.fetchall()]
    buffers = 0
    for line in plan:
        # The top node's line carries the total for the statement.
        if match := re.search(r"Buffers: shared (?:hit=(\d+))?\s*(?:read=(\d+))?", line):
            buffers = int(match.group(1) or 0) + int(match.group(2) or 0)
            break
    return plan, buffers


def measure(size: int, due: int, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from notifications.models import Email
    from outbox import owed
    from provisioning import services
    from provisioning.models import Job, Platform
    from provisioning.services import account_create

    now = timezone.now()
    owed_later = Job.objects.filter(kind="dns_check", status="pending")
    waiting = owed_later.count()
    made_due = list(owed_later.order_by("pk").values_list("pk", flat=True)[:due])
    Job.objects.filter(pk__in=made_due).update(due_at=now, dispatched_at=None)
    emails_due = list(Email.objects.order_by("pk").values_list("pk", flat=True)[:due])
    Email.objects.filter(pk__in=emails_due).update(
        status="pending", due_at=now, dispatched_at=None, sent_at=None
    )
    jobs_total = Job.objects.count()
    emails_total = Email.objects.count()

    def reset_jobs():
        Job.objects.filter(pk__in=made_due).update(dispatched_at=None)

    def reset_emails():
        Email.objects.filter(pk__in=emails_due).update(dispatched_at=None)

    with connection.cursor() as cursor:  # the seeding's and the set-up's dead rows gone
        cursor.execute("VACUUM ANALYZE provisioning_job, notifications_email")
    # The statements of each sweep, as it sends them, explained with the rows due.
    plans = {}
    for model, reset, name in ((Job, reset_jobs, "job"), (Email, reset_emails, "email")):
        with CaptureQueriesContext(connection) as captured:
            taken = owed.take_due(model)
        assert len(taken) == due, (name, len(taken))
        reset()
        for query in captured.captured_queries:
            sql = query["sql"]
            if sql.startswith("SELECT"):
                label = f"{name} sweep: due rows (SELECT … FOR UPDATE SKIP LOCKED)"
            elif sql.startswith("UPDATE") and "IN (" in sql:
                label = f"{name} sweep: mark dispatched (UPDATE)"
            elif sql.startswith("UPDATE"):
                label = f"{name} sweep: lost leases (UPDATE)"
            else:
                continue
            with connection.cursor() as cursor:
                cursor.execute("BEGIN")
            plans[label] = _explain(sql)
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")
    figures = {
        "platforms": Platform.objects.count(),
        "jobs": jobs_total,
        "dns_checks_owed_later": waiting - len(made_due),
        "emails": emails_total,
        "job_sweep_ms": _timed(lambda: owed.take_due(Job), repeat, reset_jobs),
        "email_sweep_ms": _timed(lambda: owed.take_due(Email), repeat, reset_emails),
    }
    figures["buffers"] = {label: buffers for label, (_, buffers) in plans.items()}
    figures["plans"] = {label: plan for label, (plan, _) in plans.items()}

    # One delivery: the address allocation starts after the newest address in use.
    account = account_create(
        nic=f"xx-7{size}-ovh", email="scale@bench.example", password="x" * 12, zones=[]
    )
    delivery_times, delivery_queries = [], []
    for _ in range(max(3, repeat // 3)):
        platform = services.platform_order(account=account, actor="bench")
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            services.platform_deliver(platform_id=platform.pk)
        delivery_times.append((time.perf_counter() - started) * 1000)
        delivery_queries.append(len(captured.captured_queries))
    start_sql = next(
        q["sql"]
        for q in captured.captured_queries
        if "IS NOT NULL" in q["sql"] and "DESC" in q["sql"] and "LIMIT 1" in q["sql"]
    )
    plan, buffers = _explain(start_sql)
    figures["delivery_ms"] = round(statistics.median(delivery_times), 2)
    figures["delivery_queries"] = delivery_queries[-1]
    figures["buffers"]["delivery: the newest address in use (where the search starts)"] = buffers
    figures["plans"]["delivery: the newest address in use (where the search starts)"] = plan

    measure_metrics_scrape(figures, repeat)

    print(
        f"  {size:>7,} platforms ({figures['jobs']:,} jobs, {figures['emails']:,} emails, "
        f"{figures['dns_checks_owed_later']:,} DNS checks owed later): job sweep "
        f"{figures['job_sweep_ms']:.2f} ms, email sweep {figures['email_sweep_ms']:.2f} ms, "
        f"delivery {figures['delivery_ms']:.1f} ms ({figures['delivery_queries']} queries), "
        f"/metrics {figures['metrics_scrape_ms']:.1f} ms "
        f"({figures['metrics_scrape_db_ms']:.1f} ms in the database)"
    )
    for label, value in figures["buffers"].items():
        print(f"      {value:>7,} buffers  {label}")
    connection.close()
    return figures


def measure_metrics_scrape(figures: dict, repeat: int) -> None:
    """The fleet's metrics as one scrape of /metrics computes them, the cache emptied."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from operations.metrics import fleet_families

    with connection.cursor() as cursor:
        # The seeded certificates carry no dates: their expiry spread over a lifetime (200
        # days) puts in the expiry windows what a live fleet has there.
        cursor.execute(
            "UPDATE certificates_certificateorder SET not_after = now() + (id % 200) * "
            "interval '1 day' WHERE status = 'issued' AND not_after IS NULL"
        )
        cursor.execute("VACUUM ANALYZE certificates_certificateorder")

    def scrape():
        cache.clear()
        fleet_families()

    figures["metrics_scrape_ms"] = _timed(scrape, repeat)
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        fleet_families()
    # Each statement's own time (EXPLAIN ANALYZE's execution time), summed, median of
    # `repeat` passes.
    sums = []
    for _ in range(repeat):
        database_ms = 0.0
        for number, query in enumerate(captured.captured_queries, 1):
            table = re.search(r'FROM "(\w+)"', query["sql"]).group(1)
            label = f"metrics {number}: {table}"
            plan, buffers = _explain(query["sql"])
            figures["buffers"][label] = buffers
            figures["plans"][label] = plan
            database_ms += float(re.search(r"Execution Time: ([\d.]+) ms", plan[-1]).group(1))
        sums.append(database_ms)
    database_ms = statistics.median(sums)
    figures["metrics_scrape_db_ms"] = round(database_ms, 2)
    figures["metrics_scrape_queries"] = len(captured.captured_queries)


def verdict(figures: dict, sizes: list[int]) -> dict:
    small, large = figures["sizes"][min(sizes)], figures["sizes"][max(sizes)]
    growth = max(sizes) / min(sizes)
    out = {}
    print()
    print(f"  from {min(sizes):,} to {max(sizes):,} platforms (x{growth:.0f}):")
    for name in ("job_sweep_ms", "email_sweep_ms", "delivery_ms", "metrics_scrape_db_ms"):
        factor = large[name] / small[name]
        out[name] = round(factor, 2)
        print(f"    {name:16} {small[name]:8.2f} -> {large[name]:8.2f} ms  (x{factor:.1f})")
    for label in large["buffers"]:
        factor = large["buffers"][label] / max(small["buffers"].get(label, 1), 1)
        out[label] = round(factor, 2)
        flat = "follows the work due" if factor < 2 else "GROWS WITH THE TABLE"
        print(
            f"    {label:52} {small['buffers'].get(label, 0):>7,} -> "
            f"{large['buffers'][label]:>7,} buffers (x{factor:.1f}: {flat})"
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
