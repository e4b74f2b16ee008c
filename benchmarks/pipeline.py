"""Pipeline: N orders from "ordered" to "ready" through every automatic stage.

One Celery worker of 2 processes plus beat (as in docker-compose.yml) on a redis-server of
the benchmark's own, PostgreSQL (database portal_bench_pipeline, cloned with --platforms
seeded platforms), BIND9 as the DNS Assist primary (RFC 2136 + TSIG) and as the resolver
of the DNS checks, the internal CA (email validation), FINALISATION_DELAY=0, and an SMTP
server in this process. This script is every customer: when a delivery email arrives it
follows the setup link's token and fills the form through
provisioning.services.platform_configure (DNS Assist on); when a validation email arrives
it reads the code and the link in it and submits them through platform_dcv_submit.

Measured in the same run, before the orders, with the same worker and broker:
  - Celery's own throughput for a no-op task (published in advance, then drained);
  - the CPU cost of one order's cryptography, through the portal's own functions: key
    generation, its encryption at rest and the CSR (worker side), then the CSR parsed and
    signed by the internal intermediate (customer's request side).
Limits (orders/s): no-op tasks per second / tasks one order took in this run (counted
from the worker's log: jobs, emails, sweeps, duplicate deliveries), and 2 cores / CPU
seconds of one order's cryptography. Goal: at least 50 % of the lower limit.

    benchmarks/run pipeline [--orders 500] [--platforms 1000] [--profile]
"""

import argparse
import os
import queue
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from benchmarks import common

DATABASE = f"{common.DB_PREFIX}_pipeline"
GOAL = 0.5
CORES = 2  # one worker of 2 processes
# A customer's wait (one order at a time, no backlog): each path under 1 s at p99.
WAIT_ORDERS = 50
WAIT_GOAL_SECONDS = 1.0
TIMELINE_FILE = "tasks.jsonl"  # the worker's task timeline (benchmarks/worker.py)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--platforms", type=int, default=1000, help="seeded beforehand")
    parser.add_argument("--noop-tasks", type=int, default=4000)
    parser.add_argument("--crypto-samples", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=600)
    common.add_database_options(parser)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="worker processes (an experiment; the limits still count 2 cores)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the worker (slower)")
    parser.add_argument(
        "--wait-orders",
        type=int,
        default=WAIT_ORDERS,
        help="orders of the customer's-wait phase, one at a time (0: none)",
    )
    parser.add_argument(
        "--wait-only",
        action="store_true",
        help="only the customer's-wait phase and the emails' batch (--emails)",
    )
    parser.add_argument(
        "--emails", type=int, default=200, help="emails the sweep sends at once (0: none)"
    )
    args = parser.parse_args()

    directory = common.run_dir("pipeline")
    figures = {"benchmark": "pipeline", **common.machine(), "args": vars(args)}
    orders = "no throughput phase" if args.wait_only else f"{args.orders} orders"
    print(f"Pipeline benchmark: {orders}, {args.platforms:,} platforms seeded")
    print(f"  logs in {directory}")
    database_url = common.benchmark_database(DATABASE, args)
    servers, sink = [], None
    try:
        redis_process, broker_url = common.redis_server(directory)
        servers.append(redis_process)
        bind = common.bind_server(directory)
        servers.append(bind.process)
        sink = common.MailSink().start()
        customers = Customers(sink)
        env = common.environment(
            database_url=database_url,
            broker_url=broker_url,
            directory=directory,
            extra={
                "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(sink.port),
                "FINALISATION_DELAY": "0",
                "CA_BACKEND": "internal",
                "PORTAL_BASE_URL": "http://127.0.0.1:8000",
                "BENCH_COUNTER_URL": broker_url.rsplit("/", 1)[0] + "/1",
                "BENCH_TASK_TIMELINE": str(directory / TIMELINE_FILE),
                **bind.settings(),
            },
        )
        # The worker's and beat's INFO lines are read (tasks run, "ready.", "beat: Starting");
        # the script itself keeps LOG_LEVEL=WARNING.
        children_env = {**env, "LOG_LEVEL": "INFO"}
        import django

        django.setup()
        figures["crypto"] = crypto_cost(args.crypto_samples)
        print(
            f"  cryptography: {figures['crypto']['per_order_ms']:.1f} ms CPU per order "
            f"({_crypto_parts(figures['crypto'])})"
        )
        children_env["LOG_PERIODIC_TASKS"] = "true"  # the sweeps count among an order's tasks

        worker = common.Process(
            "worker",
            [
                *(common.PYTHON, "-m", "celery", "-A", "benchmarks.worker", "worker"),
                *("--loglevel=INFO", f"--concurrency={args.concurrency}"),
            ],
            directory / "worker.log",
            env=children_env,
        )
        servers.append(worker)
        if args.wait_only:
            worker.start().wait_for_log("ready.", timeout=180)
        else:
            figures["noop"] = noop_throughput(worker, env, args.noop_tasks)
            print(
                f"  Celery no-op: {figures['noop']['tasks_per_second']:.0f} tasks/s "
                f"({args.noop_tasks} tasks, {args.concurrency} processes)"
            )
        beat = common.Process(
            "beat",
            [
                *(common.PYTHON, "-m", "celery", "-A", "benchmarks.worker", "beat"),
                *("--loglevel=INFO", "--schedule", str(directory / "beat.schedule")),
            ],
            directory / "beat.log",
            env=children_env,
        ).start()
        servers.append(beat)
        beat.wait_for_log("beat: Starting")

        processes = {"worker": worker.pid, "beat": beat.pid, "redis": redis_process.pid}
        if args.wait_only:
            figures["wait"] = customer_wait(
                args, customers, bind=bind, directory=directory, processes=processes
            )
            if args.emails:
                figures["email_batches"] = email_batches(
                    customers, worker=worker, count=args.emails
                )
            common.save(directory, "pipeline", figures)
            return 0 if figures["wait"]["met"] else 1
        figures["run"] = run_orders(
            args, customers, worker=worker, beat=beat, redis=redis_process, bind=bind,
            directory=directory,
        )  # fmt: skip
        if args.wait_orders:
            figures["wait"] = customer_wait(
                args, customers, bind=bind, directory=directory, processes=processes
            )
        if args.emails:
            figures["email_batches"] = email_batches(customers, worker=worker, count=args.emails)
        common.save(directory, "pipeline", figures)  # saved again, complete, at the end
        worker.stop()
        beat.stop()
        figures["queries_per_order"] = stage_queries(customers)
        figures["verdict"] = verdict(figures)
        common.save(directory, "pipeline", figures)
        return 0 if figures["run"]["complete"] else 1
    finally:
        for server in reversed(servers):
            server.stop()
        if sink is not None:
            sink.stop()


# The limits.


def crypto_cost(samples: int) -> dict:
    """CPU seconds of one order's cryptography, through the functions the portal calls."""
    from django.utils import timezone

    from certificates import crypto, encryption, policy
    from certificates.services import internal_ca_crl_url, internal_ca_ensure

    _, intermediate = internal_ca_ensure()
    parts = {"key": [], "key_encryption": [], "csr": [], "signing": [], "ca_key_load": []}
    for n in range(samples):
        name = f"exchange.crypto-{n}.bench.test"
        clock = time.process_time()
        key = crypto.private_key_generate(key_type="rsa2048")
        parts["key"].append(time.process_time() - clock)
        clock = time.process_time()
        encryption.encrypt(crypto.private_key_pem(key))
        parts["key_encryption"].append(time.process_time() - clock)
        clock = time.process_time()
        csr_pem = crypto.csr_build(key=key, server_name=name)
        parts["csr"].append(time.process_time() - clock)
        # What the internal CA does when the right code is pasted (_internal_certificate_issue):
        # it loads its key from the database for every certificate, then signs.
        clock = time.process_time()
        issuer_key = crypto.private_key_load(encryption.decrypt(intermediate.key_encrypted))
        parts["ca_key_load"].append(time.process_time() - clock)
        clock = time.process_time()
        issuer = crypto.certificates_load(intermediate.certificate_pem)[0]
        leaf = crypto.leaf_certificate_build(
            csr=crypto.csr_parse(csr_pem, server_name=name),
            server_name=name,
            issuer=issuer,
            issuer_key=issuer_key,
            now=timezone.now(),
            validity=policy.certificate_lifetime(on=timezone.now(), configured=None),
            crl_url=internal_ca_crl_url(),
        )
        crypto.certificate_facts(crypto.certificates_load(crypto.certificate_pem(leaf))[0])
        parts["signing"].append(time.process_time() - clock)
    means = {name: statistics.mean(values) for name, values in parts.items()}
    # The limit counts the cryptography an order needs; reloading (and re-validating) the
    # CA's key for every certificate is the portal's overhead, reported beside it.
    per_order = sum(value for name, value in means.items() if name != "ca_key_load")
    return {
        "samples": samples,
        "parts_ms": {name: round(value * 1000, 2) for name, value in means.items()},
        "key_ms_stdev": round(statistics.stdev(parts["key"]) * 1000, 1),
        "per_order_ms": round(per_order * 1000, 2),
        "per_order_as_done_ms": round(sum(means.values()) * 1000, 2),
        "limit_orders_per_second": round(CORES / per_order, 1),
    }


def _crypto_parts(crypto: dict) -> str:
    return ", ".join(f"{name} {ms:.1f}" for name, ms in crypto["parts_ms"].items())


def noop_throughput(worker: common.Process, env: dict, count: int) -> dict:
    """Publish `count` no-op tasks, then start the worker and time how fast it drains them."""
    import redis

    from benchmarks.worker import noop

    counter = redis.Redis.from_url(env["BENCH_COUNTER_URL"])
    counter.delete("noop:first", "noop:last", "noop:done")
    for _ in range(count):
        noop.delay(count)
    worker.start()
    deadline = time.monotonic() + 180
    while counter.get("noop:last") is None:
        if time.monotonic() > deadline or worker.popen.poll() is not None:
            raise RuntimeError(f"no-op tasks not drained:\n{worker.tail()}")
        time.sleep(0.2)
    worker.wait_for_log("ready.")
    first, last = float(counter.get("noop:first")), float(counter.get("noop:last"))
    return {
        "tasks": count,
        "seconds": round(last - first, 3),
        "tasks_per_second": (count - 1) / (last - first),
    }


# The customers.


class Customers:
    """Every email the portal sends arrives at the SMTP sink; the customers read them here."""

    def __init__(self, sink: common.MailSink) -> None:
        self.sink = sink

    def next_email(self, timeout: float):
        """(time received, message); queue.Empty when none came within timeout."""
        return self.sink.receive(timeout)

    def discard_all(self) -> None:
        while True:
            try:
                self.sink.receive(0.2)
            except queue.Empty:
                return


SETUP_LINK = re.compile(r"https?://[^/\s]+/setup/([^/\s]+)/")
DCV_LINK = re.compile(r"https?://[^/\s]+/dcv/(\d+)/([^/\s]+)/")
DCV_CODE = re.compile(r"^\s{4}(\S+)\s*$", re.M)


def run_orders(args, customers: Customers, *, worker, beat, redis, bind, directory: Path) -> dict:
    from django.db import connection

    from provisioning import links
    from provisioning.models import Platform
    from provisioning.services import (
        account_create,
        platform_configure,
        platform_dcv_submit,
        platform_order,
    )

    account = account_create(
        nic="xx-99999-ovh",
        email="ref@customer.example",
        password="bench-password-123",  # noqa: S106 (never used to log in)
        language="en",
        zones=[common.ZONE],
    )
    actor = "customer:xx-99999-ovh"
    log_start = worker.log.stat().st_size
    meter = common.CpuMeter(
        {
            "script (the customers)": ("pid", _own_pid()),
            "SMTP sink": ("pid", customers.sink.pid),
            "worker": worker.pid,
            "beat": beat.pid,
            "postgres (whole server)": common.CpuMeter.postmaster(),
            # Exact only when sessions outlive the measurement (--conn-max-age): a session
            # that ends before it is not seen here, only in the whole server's figure.
            "of which this database's open sessions": f"postgres {DATABASE} ",
            "redis": redis.pid,
            "named": bind.process.pid,
        }
    )
    profiles = []
    if args.profile:
        seconds = int(args.orders / 6) + 5
        profiles = [
            common.py_spy(worker.pid, seconds=seconds, output=directory / "worker.pyspy.txt"),
            common.py_spy(
                _own_pid(), seconds=seconds, output=directory / "script.pyspy.txt",
                subprocesses=False,
            ),
        ]  # fmt: skip
    db_before = _database_stats()
    meter.start()
    started = time.monotonic()
    placed_at, platform_ids, domains = {}, {}, {}
    for n in range(args.orders):
        platform = platform_order(account=account, actor="api")
        placed_at[platform.service] = time.monotonic()
        platform_ids[platform.service] = platform.pk
        domains[platform.service] = f"o{n}.{common.ZONE}"
    placing = time.monotonic() - started
    ready_at: dict[str, float] = {}
    kinds = Counter()
    refused = Counter()
    deadline = started + args.timeout
    while len(ready_at) < args.orders and time.monotonic() < deadline:
        try:
            when, message = customers.next_email(timeout=1)
        except queue.Empty:
            continue
        subject = message["Subject"]
        body = common.text_body(message)
        if "en cours de livraison" in subject or "being delivered" in subject:
            kinds["delivery"] += 1
            service = links.service_from_token(SETUP_LINK.search(body).group(1))
            domain = domains[service]
            platform_configure(
                platform_id=platform_ids[service],
                actor=actor,
                subdomain="exchange",
                domain=domain,
                validation_email=f"hostmaster@{domain}",
                dns_assist=True,
            )
        elif "Domain Control Validation" in subject:
            kinds["dcv"] += 1
            order_number, token = DCV_LINK.search(body).groups()
            service = links.service_from_dcv_token(token, order_number=int(order_number))
            result = platform_dcv_submit(
                platform_id=platform_ids[service],
                code=DCV_CODE.search(body).group(1),
                actor=actor,
            )
            if result.outcome != "valid":
                refused[result.outcome] += 1
        elif "est prêt" in subject or "is ready" in subject:
            kinds["ready"] += 1
            service = re.search(r"(pex-[a-z0-9]+)", subject).group(1)
            ready_at[service] = when
        else:
            kinds[subject] += 1
    elapsed = (max(ready_at.values()) if ready_at else time.monotonic()) - started
    cpu = meter.stop()
    db_after = _database_stats()
    for profile in profiles:
        if profile:
            profile.popen.wait()
    connection.close()

    states = Counter(
        Platform.objects.filter(pk__in=platform_ids.values()).values_list("state", flat=True)
    )
    dns = Counter(
        Platform.objects.filter(pk__in=platform_ids.values()).values_list("dns_state", flat=True)
    )
    tasks, rows = _tasks(worker, log_start, platform_ids, started)
    latencies = sorted(ready_at[s] - placed_at[s] for s in ready_at)
    run = {
        "orders": args.orders,
        "complete": len(ready_at) == args.orders and states == Counter(ready=args.orders),
        "seconds": round(elapsed, 2),
        "placing_seconds": round(placing, 2),
        "orders_per_second": round(len(ready_at) / elapsed, 2),
        "latency_p50_s": round(_percentile(latencies, 50), 1) if latencies else None,
        "latency_p99_s": round(_percentile(latencies, 99), 1) if latencies else None,
        "states": dict(states),
        "dns_states": dict(dns),
        "emails_received": dict(kinds),
        "codes_refused": dict(refused),
        "tasks": tasks,
        "rows_per_order": rows,
        "tasks_per_order": round(sum(tasks.values()) / args.orders, 2),
        "cpu": cpu,
        "database_per_order": {
            name: round((db_after[name] - db_before[name]) / args.orders, 1) for name in db_after
        },
    }
    if profiles:
        run["profile"] = {
            "worker": _profile_summary(directory / "worker.pyspy.txt"),
            "script": _profile_summary(directory / "script.pyspy.txt"),
        }
    return run


def _database_stats() -> dict:
    """Sessions opened, transactions and rows touched in the benchmark's database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT sessions, xact_commit + xact_rollback, tup_returned, tup_fetched, "
            "tup_inserted + tup_updated + tup_deleted FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        row = cursor.fetchone()
    connection.close()
    names = ["sessions", "transactions", "rows_scanned", "rows_fetched", "rows_written"]
    return dict(zip(names, row, strict=True))


def stage_queries(customers: Customers) -> dict:
    """One more order run in this process, task by task, counting the SQL statements of
    each step (the worker is stopped: the tasks are called here, as the worker would)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from notifications.models import Email
    from notifications.tasks import send_email
    from provisioning.models import Account, Job
    from provisioning.services import platform_configure, platform_dcv_submit, platform_order
    from provisioning.tasks import run_job

    counts: Counter = Counter()

    def measured(label, call):
        with CaptureQueriesContext(connection) as captured:
            result = call()
        counts[label] += len(captured.captured_queries)
        return result

    def work_off(platform):
        while True:
            # Due now: the certificate's renewal, owed at issuance, waits for months.
            due = {"status": "pending", "due_at__lte": timezone.now()}
            jobs = list(Job.objects.filter(platform=platform, **due))
            emails = list(Email.objects.filter(target_id=platform.pk, **due))
            if not jobs and not emails:
                return
            for job in jobs:
                Job.objects.filter(pk=job.pk).update(dispatched_at=None)
                measured(f"task run_job {job.kind}", lambda job=job: run_job(job.pk))
            for email in emails:
                measured(f"task send_email {email.kind}", lambda e=email: send_email(e.pk))

    account = Account.objects.get(nic="xx-99999-ovh")
    customers.discard_all()
    platform = measured(
        "API: place the order", lambda: platform_order(account=account, actor="api")
    )
    work_off(platform)
    domain = f"stages.{common.ZONE}"
    measured(
        "customer: setup form (service call)",
        lambda: platform_configure(
            platform_id=platform.pk, actor="customer", subdomain="exchange", domain=domain,
            validation_email=f"hostmaster@{domain}", dns_assist=True,
        ),
    )  # fmt: skip
    work_off(platform)
    code = None
    while code is None:
        _, message = customers.next_email(timeout=10)
        if "Domain Control Validation" in message["Subject"]:
            code = DCV_CODE.search(common.text_body(message)).group(1)
    measured(
        "customer: validation code (service call)",
        lambda: platform_dcv_submit(platform_id=platform.pk, code=code, actor="customer"),
    )
    work_off(platform)
    platform.refresh_from_db()
    assert platform.state == "ready", platform.state
    return {"by_step": dict(counts), "total": sum(counts.values())}


def _own_pid() -> int:
    return os.getpid()


def _tasks(worker, log_start: int, platform_ids: dict, started: float) -> tuple[dict, dict]:
    """Tasks the worker ran during the orders (from its log) and the rows they served."""
    from notifications.models import Email
    from provisioning.models import Job

    with worker.log.open("rb") as log:
        log.seek(log_start)
        text = log.read().decode(errors="replace")
    tasks = Counter(re.findall(r"Task ([\w.]+)\[[^\]]+\] succeeded", text))
    ids = list(platform_ids.values())
    orders = len(ids)
    rows = {
        "jobs": Job.objects.filter(platform_id__in=ids).count() / orders,
        "emails": Email.objects.filter(
            target_type__model="platform", target_id__in=ids
        ).count() / orders,
        "job_attempts": sum(Job.objects.filter(platform_id__in=ids).values_list(
            "attempts", flat=True
        )) / orders,
    }  # fmt: skip
    return dict(tasks), {k: round(v, 2) for k, v in rows.items()}


def _percentile(values: list[float], percent: float) -> float:
    index = min(len(values) - 1, max(0, round(percent / 100 * len(values) + 0.5) - 1))
    return values[index]


# Who spent the CPU (see common.attribute: innermost match wins).
PROFILE_GROUPS = {
    "waiting for PostgreSQL": ("Connection.wait", "_execute_send"),
    "RSA key generation": ("generate_private_key",),
    "loading the CA key (internal CA)": ("private_key_load",),
    "other cryptography": ("certificates/crypto.py", "cryptography/"),
    "opening/closing database connections": (
        "get_new_connection", "_connect_gen", "Connection.close", "_parse_conninfo",
    ),
    "psycopg (sending queries, reading rows)": ("psycopg/",),
    "Django ORM (building and compiling queries, model instances)": ("django/db/",),
    "email: rendering templates": ("django/template/",),
    "email: MIME building, SMTP": ("smtplib", "django/core/mail/", "email/"),
    "DNS (dnspython)": ("dns/",),
    "Celery, kombu, billiard, redis-py": ("celery/", "kombu/", "billiard/", "redis/"),
    "the portal's own code": ("provisioning/", "notifications/", "certificates/", "zones/"),
}  # fmt: skip


def _profile_summary(path: Path) -> dict:
    if not path.exists():
        return {}
    return {
        "attributed": {
            name: round(share, 3) for name, share in common.attribute(path, PROFILE_GROUPS).items()
        },
        "top_leaves": [
            (name, round(share, 3)) for name, share in common.summarise_collapsed(path, top=12)
        ],
    }


def verdict(figures: dict) -> dict:
    run = figures["run"]
    celery_limit = figures["noop"]["tasks_per_second"] / run["tasks_per_order"]
    crypto_limit = figures["crypto"]["limit_orders_per_second"]
    lower = min(celery_limit, crypto_limit)
    ratio = run["orders_per_second"] / lower
    bound = "Celery" if celery_limit < crypto_limit else "cryptography"
    print()
    print(
        f"  orders: {run['orders']} ready in {run['seconds']} s "
        f"(placing {run['placing_seconds']} s)"
    )
    print(f"  throughput: {run['orders_per_second']:.2f} orders/s; latency order→ready "
          f"p50 {run['latency_p50_s']} s, p99 {run['latency_p99_s']} s")  # fmt: skip
    print(f"  states: {run['states']}, DNS: {run['dns_states']}, emails: {run['emails_received']}")
    print(f"  tasks run per order: {run['tasks_per_order']} {run['tasks']}")
    print(f"  rows per order: {run['rows_per_order']}")
    print(f"  database per order: {run['database_per_order']}")
    queries = figures["queries_per_order"]
    print(f"  SQL statements per order: {queries['total']} — " + ", ".join(
        f"{step} {n}" for step, n in queries["by_step"].items()
    ))  # fmt: skip
    print(f"  {common.describe_cpu(run['cpu'])}")
    print(f"  limit (Celery): {figures['noop']['tasks_per_second']:.0f} no-op tasks/s / "
          f"{run['tasks_per_order']} tasks per order = {celery_limit:.1f} orders/s")  # fmt: skip
    print(f"  limit (cryptography): {CORES} cores / {figures['crypto']['per_order_ms']:.1f} ms "
          f"= {crypto_limit:.1f} orders/s")  # fmt: skip
    goal = "MET" if ratio >= GOAL else "MISSED"
    print(f"  ratio: {run['orders_per_second']:.2f} / {lower:.1f} ({bound}, the lower limit) "
          f"= {ratio:.0%}  (goal >= {GOAL:.0%}: {goal})")  # fmt: skip
    for who, profile in run.get("profile", {}).items():
        print(f"  {who} profile (CPU, by who spent it):")
        for name, share in profile.get("attributed", {}).items():
            print(f"    {share:6.1%}  {name}")
        print(f"  {who} profile, top functions (self time):")
        for name, share in profile.get("top_leaves", []):
            print(f"    {share:6.1%}  {name}")
    return {
        "celery_limit_orders_per_second": round(celery_limit, 2),
        "crypto_limit_orders_per_second": crypto_limit,
        "lower_limit": bound,
        "ratio": round(ratio, 3),
        "goal": GOAL,
        "met": ratio >= GOAL,
    }


# A customer's wait: one order at a time, nothing queued, through the real views.

WAIT_PATHS = {
    "dns": "setup POST → A/AAAA served by BIND",
    "email": "setup POST → validation email received",
    "certificate": "code's Next → certificate issued",
}


def customer_wait(
    args, customers: Customers, *, bind, directory: Path, processes: dict[str, int]
) -> dict:
    """For each of `args.wait_orders` orders, one after the other: the delivery email's
    link opened by a logged-in customer (Django's test client through the portal's URLs,
    middleware and views); then timed from the setup form's POST until BIND answers the
    server name's A and AAAA (dnspython, polled every few ms) and until the validation
    email reaches the SMTP sink; then from the validation page's POST ("Next", the code
    read from that email) until its answer, the certificate issued. The next order starts
    once the platform is ready: nothing is queued when a customer acts. Beat runs with its
    usual interval: the sweeps that ran during the phase, and the rows they sent, are
    counted from the worker's task timeline (benchmarks/worker.py)."""
    from django.db import connection
    from django.test import Client

    from provisioning.models import Platform
    from provisioning.services import platform_order

    account = _wait_account()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(account.users.get())
    customers.discard_all()
    meter = common.CpuMeter(
        {
            "script (the customers, the web)": ("pid", _own_pid()),
            "SMTP sink": ("pid", customers.sink.pid),
            **processes,
            "postgres (whole server)": common.CpuMeter.postmaster(),
            "named": bind.process.pid,
        }
    )
    meter.start()
    clock_offset = time.time() - time.monotonic()
    timeline_start = time.time()
    orders, warmup = [], None
    print(f"\n  A customer's wait: {args.wait_orders} orders, one at a time (+1 warm-up)")
    for n in range(args.wait_orders + 1):
        platform = platform_order(account=account, actor="api")
        # The first waits for the worker to start (its INFO log is silenced: LOG_LEVEL).
        timeout = 180 if n == 0 else 30
        token = _wait_for_email(customers, platform.service, "delivery", timeout=timeout)[1]
        platform.refresh_from_db()
        domain = f"w{n}.{common.ZONE}"
        server_name = f"exchange.{domain}"
        setup_path = f"/setup/{token}/"
        assert client.get(setup_path).status_code == 200
        order = {"service": platform.service, "platform_id": platform.pk}
        order["setup_post"] = time.monotonic()
        response = client.post(
            setup_path,
            {
                "service": platform.service,
                "subdomain": "exchange",
                "domain": domain,
                "validation_email": "hostmaster",
                "dns_assist": "on",
                "validation_method": "email",
            },
        )
        order["setup_answered"] = time.monotonic()
        assert response.status_code == 302, response.status_code
        dcv_path = None
        while "dns_served" not in order or dcv_path is None:
            if "dns_served" not in order and _served(
                bind.address, server_name, platform.ipv4, platform.ipv6
            ):
                order["dns_served"] = time.monotonic()
            if dcv_path is None:
                found = _wait_for_email(
                    customers, platform.service, "dcv",
                    timeout=0.005 if "dns_served" not in order else 10,
                )  # fmt: skip
                if found:
                    order["email_received"], dcv_path, code = found
            if time.monotonic() - order["setup_post"] > 30:
                raise RuntimeError(f"{platform.service}: no BIND answer or no email in 30 s")
        order["dcv_post"] = time.monotonic()
        # Each order is another customer, from an address of their own (TEST-NET-2): the
        # validation page's rate limit per client address is not what is measured.
        response = client.post(dcv_path, {"code": code}, REMOTE_ADDR=f"198.51.100.{n % 250 + 1}")
        order["certificate_answered"] = time.monotonic()
        certificate = Platform.objects.select_related("certificate").get(pk=platform.pk).certificate
        assert response.status_code == 200 and certificate.status == "issued", (
            response.status_code, certificate.status,
        )  # fmt: skip
        order["ready_email"] = _wait_for_email(customers, platform.service, "ready")[0]
        if n == 0:
            warmup = order
        else:
            orders.append(order)
    timeline_end = time.time()
    cpu = meter.stop()
    connection.close()
    result = _wait_figures(orders, warmup, clock_offset, directory, timeline_start, timeline_end)
    result["cpu"] = cpu
    result["load_average"] = common.load_average()
    _print_wait(result)
    return result


def _wait_account():
    """The benchmark's customer account (made by the throughput phase, or here)."""
    from provisioning.models import Account
    from provisioning.services import account_create

    account = Account.objects.filter(nic="xx-99999-ovh").first()
    return account or account_create(
        nic="xx-99999-ovh",
        email="ref@customer.example",
        password="bench-password-123",  # noqa: S106 (never used to log in)
        language="en",
        zones=[common.ZONE],
    )


def _wait_for_email(customers: Customers, service: str, kind: str, timeout: float = 30):
    """The platform's next email of this kind: (monotonic time received, the setup token)
    for a delivery, (time, validation page path, code) for a validation email, (time,)
    for the ready email. None when a short timeout ran out; other emails are skipped."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            when, message = customers.next_email(
                timeout=max(0.0, min(timeout, deadline - time.monotonic()))
            )
        except queue.Empty:
            if timeout < 1:
                return None
            raise RuntimeError(f"{service}: no {kind} email within {timeout} s") from None
        subject, body = message["Subject"], common.text_body(message)
        if kind == "delivery" and service in subject and "delivered" in subject:
            return when, SETUP_LINK.search(body).group(1)
        if kind == "dcv" and "Domain Control Validation" in subject:
            link = DCV_LINK.search(body)
            return when, f"/dcv/{link.group(1)}/{link.group(2)}/", DCV_CODE.search(body).group(1)
        if kind == "ready" and service in subject and "ready" in subject:
            return (when,)


def _served(server: str, name: str, ipv4: str, ipv6: str) -> bool:
    """Whether BIND answers the name's A and AAAA with the platform's addresses."""
    import dns.message
    import dns.query
    import dns.rdatatype

    host, port = server.rsplit(":", 1)
    for rtype, expected in ((dns.rdatatype.A, ipv4), (dns.rdatatype.AAAA, ipv6)):
        answer = dns.query.udp(dns.message.make_query(name, rtype), host, port=int(port), timeout=1)
        values = {item.to_text() for rrset in answer.answer for item in rrset}
        if values != {expected}:
            return False
    return True


def _wait_figures(orders, warmup, clock_offset, directory, start, end) -> dict:
    """Each path's percentiles, and each order's timeline: every hop from the POST, from
    the rows' timestamps (events, jobs, emails) and the worker's task timeline."""
    paths = {
        "dns": [o["dns_served"] - o["setup_post"] for o in orders],
        "email": [o["email_received"] - o["setup_post"] for o in orders],
        "certificate": [o["certificate_answered"] - o["dcv_post"] for o in orders],
    }
    tasks = _task_timeline(directory / TIMELINE_FILE, start, end)
    hops = [_hops(order, tasks, clock_offset) for order in orders]
    names = list(dict.fromkeys(name for timeline in hops for name in timeline))
    sweeps = [t for t in tasks.values() if t["task"].startswith(SWEEP_TASKS)]
    result = {
        "orders": len(orders),
        "goal_seconds": WAIT_GOAL_SECONDS,
        "paths": {},
        "warmup_seconds": {
            "dns": round(warmup["dns_served"] - warmup["setup_post"], 3),
            "email": round(warmup["email_received"] - warmup["setup_post"], 3),
            "certificate": round(warmup["certificate_answered"] - warmup["dcv_post"], 3),
        },
        "hops_ms_median": {
            name: round(statistics.median(t[name] for t in hops if name in t) * 1000, 1)
            for name in names
        },
        "hops_ms_p99": {
            name: round(_percentile(sorted(t[name] for t in hops if name in t), 99) * 1000, 1)
            for name in names
        },
        "sweeps_run": len(sweeps),
        "rows_sent_by_sweeps": sum(t.get("retval") or 0 for t in sweeps),
        "orders_timeline_ms": hops,
    }
    for path, values in paths.items():
        values.sort()
        p99 = _percentile(values, 99)
        result["paths"][path] = {
            "label": WAIT_PATHS[path],
            **{f"p{p}_ms": round(_percentile(values, p) * 1000, 1) for p in (50, 90, 99)},
            "max_ms": round(values[-1] * 1000, 1),
            "met": p99 < WAIT_GOAL_SECONDS,
        }
    result["met"] = all(path["met"] for path in result["paths"].values())
    return result


SWEEP_TASKS = (
    "provisioning.tasks.dispatch_due_jobs",
    "notifications.tasks.dispatch_due_emails",
    "webhooks.tasks.dispatch_due_webhooks",
)


def _task_timeline(path: Path, start: float, end: float) -> dict:
    """Task id → its name, first argument, and when it was received, started, ended."""
    import json

    tasks: dict[str, dict] = {}
    if not path.exists():
        return tasks
    for line in path.read_text().splitlines():
        note = json.loads(line)
        if not start <= note["t"] <= end + 5:
            continue
        task = tasks.setdefault(
            note["id"], {"task": note["task"], "arg": (note["args"] or [None])[0]}
        )
        task[note["event"]] = note["t"]
        if note["event"] == "ended":
            task["retval"] = note.get("retval")
    return tasks


def _hops(order: dict, tasks: dict, clock_offset: float) -> dict:
    """When each step of one order happened, in seconds: from the setup POST for the steps
    before the code's Next, from the code's Next for the others (wall clock from rows and
    the worker's timeline, converted to the script's monotonic clock)."""
    from notifications.models import Email
    from provisioning.models import Job, PlatformEvent

    platform_id = order["platform_id"]

    def at(wall) -> float:
        return (wall.timestamp() if hasattr(wall, "timestamp") else wall) - clock_offset

    steps = {
        "setup POST answered (service, commit, tasks published)": order["setup_answered"],
        "A/AAAA answered by BIND (dnspython)": order["dns_served"],
        "validation email received by the SMTP sink": order["email_received"],
        "code's Next answered (certificate issued)": order["certificate_answered"],
        "ready email received by the SMTP sink": order["ready_email"],
    }
    events = dict(
        PlatformEvent.objects.filter(platform_id=platform_id)
        .order_by("-created_at")
        .values_list("kind", "created_at")
    )
    for kind, label in (
        ("dns_assisted", "BIND updated and read back, platform locked (dns_assisted event)"),
        ("certificate_pending", "key, CSR, order made (certificate_pending event)"),
        ("email_dcv", "validation email rendered and owed (email_dcv event)"),
        ("certificate_issued", "certificate signed (certificate_issued event)"),
    ):
        if kind in events:
            steps[label] = at(events[kind])
    jobs = dict(Job.objects.filter(platform_id=platform_id).values_list("pk", "kind"))
    emails = dict(
        Email.objects.filter(target_id=platform_id, target_type__model="platform").values_list(
            "pk", "kind"
        )
    )
    for sent_at in Email.objects.filter(pk__in=emails, kind="dcv").values_list(
        "sent_at", flat=True
    ):
        if sent_at:
            steps["validation email marked sent (sent_at)"] = at(sent_at)
    for task in tasks.values():
        if task["task"] == "provisioning.tasks.run_job" and task["arg"] in jobs:
            what = f"job {jobs[task['arg']]}"
        elif task["task"] == "notifications.tasks.send_email" and task["arg"] in emails:
            what = f"email {emails[task['arg']]}"
        else:
            continue
        if what in ("job deliver", "email delivery"):
            continue
        for event in ("received", "started", "ended"):
            if event in task:
                steps.setdefault(f"{what}: task {event}", at(task[event]))
    hops = {}
    for name, when in steps.items():
        if any(word in name for word in AFTER_THE_CODE):
            hops[f"code's Next + {name}"] = when - order["dcv_post"]
        else:
            hops[f"setup POST + {name}"] = when - order["setup_post"]
    return hops


# The steps timed from the code's Next (the others from the setup POST).
AFTER_THE_CODE = ("code's Next", "certificate signed", "finalise", "ready")


def _print_wait(result: dict) -> None:
    print(f"  A customer's wait, {result['orders']} orders one at a time (goal: p99 < 1 s):")
    for path in result["paths"].values():
        verdict_ = "MET" if path["met"] else "MISSED"
        print(
            f"    {path['label']:<42} p50 {path['p50_ms']:6.1f} ms  p90 {path['p90_ms']:6.1f} ms"
            f"  p99 {path['p99_ms']:6.1f} ms  max {path['max_ms']:6.1f} ms  ({verdict_})"
        )
    print(f"    warm-up order (not counted): {result['warmup_seconds']}")
    print(f"    {common.describe_cpu(result['cpu'])}; load average {result['load_average']}")
    print(
        f"    sweeps run meanwhile: {result['sweeps_run']}, rows they sent: "
        f"{result['rows_sent_by_sweeps']} (0: no hop waited for beat)"
    )
    for start in ("setup POST", "code's Next"):
        print(f"    timeline from the {start} (median, p99 over the orders, ms):")
        steps = [(n, ms) for n, ms in result["hops_ms_median"].items() if n.startswith(start)]
        for name, median in sorted(steps, key=lambda item: item[1]):
            label = name.removeprefix(f"{start} + ")
            print(f"      {median:7.1f} {result['hops_ms_p99'][name]:7.1f}  {label}")


def email_batches(customers: Customers, *, worker, count: int) -> dict:
    """`count` emails owed at once whose messages were lost (what beat's sweep finds after a
    broker outage), sent by the worker twice: as the sweep sent them before (one task and
    one SMTP connection per email, owed.dispatch_due) and as it sends them now (batches of
    notifications.tasks.SEND_BATCH_SIZE over one connection each). Timed from the publish
    to the last message at the SMTP sink, with the worker's CPU."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction

    from notifications.models import Email
    from notifications.services import _new_message_id
    from notifications.tasks import SEND_BATCH_SIZE, send_email, send_emails
    from outbox import owed

    account = _wait_account()
    template = Email.objects.filter(kind="delivery").first()
    customers.discard_all()
    result = {"emails": count, "batch_size": SEND_BATCH_SIZE}
    for n, mode in enumerate(("one task per email", "batches")):
        with transaction.atomic():  # invisible to beat's sweep until marked dispatched
            Email.objects.bulk_create(
                Email(
                    target_type=ContentType.objects.get_for_model(account),
                    target_id=account.pk,
                    kind=f"bench-{n}-{i}",
                    recipient=template.recipient,
                    language="en",
                    subject=f"Batch {n} email {i}",
                    body_text=template.body_text,
                    body_html=template.body_html,
                    message_id=_new_message_id(),
                )
                for i in range(count)
            )
            ids = owed.take_due(Email, limit=count)
        meter = common.CpuMeter({"worker": worker.pid, "SMTP sink": ("pid", customers.sink.pid)})
        meter.start()
        started = time.monotonic()
        if mode == "batches":
            for start in range(0, len(ids), SEND_BATCH_SIZE):
                send_emails.delay(ids[start : start + SEND_BATCH_SIZE])
        else:
            for pk in ids:
                send_email.delay(pk)
        last = started
        for _ in range(len(ids)):
            last, _message = customers.next_email(timeout=60)
        cpu = meter.stop()
        result[mode] = {
            "seconds": round(last - started, 3),
            "emails_per_second": round(len(ids) / (last - started), 1),
            "worker_cpu_ms_per_email": round(cpu["cpu_seconds"]["worker"] * 1000 / len(ids), 2),
            "cpu": cpu,
        }
    connection.close()
    print(f"\n  The sweep's {count} due emails (lost messages), by the worker:")
    for mode in ("one task per email", "batches"):
        figures = result[mode]
        print(
            f"    {mode:<20} {figures['seconds']:6.2f} s  {figures['emails_per_second']:6.1f} "
            f"emails/s  worker CPU {figures['worker_cpu_ms_per_email']:.2f} ms per email"
        )
    return result


if __name__ == "__main__":
    sys.exit(main())
