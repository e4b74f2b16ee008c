"""Admin: the platform changelist with 1,000 and 100,000 platforms on PostgreSQL.

A superuser's GET of /admin/provisioning/platform/ through Django's test client, in this
process, against a database cloned from the seeded template of each size (the platforms
with their accounts, certificates, jobs, emails and timelines: benchmarks/seed.py). Time
per page (median and worst of --repeat requests after two warm-up requests), the number of
SQL statements, and the same for a later page, a filter and a search. Goal: the first
page under 300 ms with 100,000 platforms, and a number of queries that does not grow
with the table.

    benchmarks/run admin [--sizes 1000,100000] [--repeat 15]
"""

import argparse
import statistics
import sys
import time

from benchmarks import common

GOAL_MS = 300
PAGES = {
    "first page": "",
    "middle page": "?p={middle}",
    "filter state=ready": "?state__exact=ready",
    "filter stuck": "?stuck=yes",
    "search a service": "?q=pex-s0000123",
    "search a domain": "?q=p777.customer-155.example",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    directory = common.run_dir("admin")
    figures = {"benchmark": "admin", **common.machine(), "args": vars(args), "sizes": {}}
    print(f"Admin benchmark: platform changelist, sizes {sizes}")
    urls = {
        size: common.fresh_database(f"{common.DB_PREFIX}_admin_{size}", platforms=size)
        for size in sizes
    }
    common.environment(database_url=urls[sizes[0]], directory=directory)
    import django

    django.setup()
    from django.db import connection

    for size in sizes:
        connection.close()
        connection.settings_dict["NAME"] = f"{common.DB_PREFIX}_admin_{size}"
        figures["sizes"][size] = measure(size, args.repeat)
        main_query = figures["sizes"][size]["pages"]["first page"].pop("main_sql")
        figures["sizes"][size]["explain"] = explain(main_query)
    figures["verdict"] = verdict(figures, sizes)
    common.save(directory, "admin", figures)
    print(f"  details (EXPLAIN of the page's query) in {directory / 'admin.json'}")
    return 0


def measure(size: int, repeat: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user = get_user_model().objects.create_superuser("bench-admin", "admin@bench.example", "x")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    results = {}
    print(f"  {size:,} platforms:")
    for name, query in PAGES.items():
        url = f"/admin/provisioning/platform/{query}".format(middle=size // 200)
        for _ in range(2):
            assert client.get(url).status_code == 200
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        sql_ms = sum(float(q["time"]) for q in captured.captured_queries) * 1000
        results[name] = {
            "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1),
            "queries": len(captured.captured_queries),
            "sql_ms_last": round(sql_ms, 1),
            "rows_shown": response.content.decode().count('class="action-select"'),
            "sql": [q["sql"][:300] for q in captured.captured_queries],
            "main_sql": next(
                q["sql"]
                for q in captured.captured_queries
                if q["sql"].startswith('SELECT "provisioning_platform"') and "LIMIT 100" in q["sql"]
            )
            if name == "first page"
            else "",
        }
        r = results[name]
        print(
            f"    {name:18} median {r['median_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms  "
            f"{r['queries']:2} queries ({r['sql_ms_last']:.1f} ms in SQL)  {r['rows_shown']} rows"
        )
    for name in results:
        if name != "first page":
            results[name].pop("main_sql")
    get_user_model().objects.filter(pk=user.pk).delete()
    return {"pages": results}


def explain(sql: str) -> list[str]:
    """The plan of a query the changelist ran (its SQL as sent, parameters bound)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return [row[0] for row in cursor.fetchall()]


def verdict(figures: dict, sizes: list[int]) -> dict:
    largest, smallest = max(sizes), min(sizes)
    first = {size: figures["sizes"][size]["pages"]["first page"] for size in sizes}
    ms = first[largest]["median_ms"]
    queries = {size: first[size]["queries"] for size in sizes}
    ratio = ms / GOAL_MS
    grows = queries[largest] > queries[smallest]
    print()
    print(
        f"  first page with {largest:,} platforms: {ms:.0f} ms = {ratio:.0%} of the {GOAL_MS} ms "
        f"limit ({'MET' if ms < GOAL_MS else 'MISSED'})"
    )
    print(
        "  queries: "
        + ", ".join(f"{q} with {s:,}" for s, q in queries.items())
        + f" ({'GROWS: MISSED' if grows else 'does not grow with the table: MET'})"
    )
    print("  plan of the page's query at the largest size:")
    for line in figures["sizes"][largest]["explain"]:
        print(f"    {line}")
    return {
        "ms": ms,
        "ratio": round(ratio, 3),
        "queries": queries,
        "met": ms < GOAL_MS and not grows,
    }


if __name__ == "__main__":
    sys.exit(main())
