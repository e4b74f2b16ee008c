"""The deployed view, for real: the portal under gunicorn and a Celery worker with beat,
scraped by Debian's Prometheus, queried through its HTTP API; and the worker's own log
lines in JSON."""

import json
import re
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
from django.utils import timezone

from harness.processes import free_port
from portal.celery import app
from provisioning.models import Platform
from provisioning.services import platform_order
from tests.factories import AccountFactory
from tests.processes import (
    REDIS_URL,
    ManagedProcess,
    WorkerProcess,
    portal_env,
    use_broker,
)

pytestmark = pytest.mark.postgres

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
STUCK_AFTER = 3600  # configured platforms, for this test's web process


class Gunicorn(ManagedProcess):
    ready = b"Listening at"


class Prometheus(ManagedProcess):
    ready = b"Server is ready to receive web requests."

    def __init__(self, *, directory: Path, port: int, targets: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        # The shipped rules, with every `for:` shortened so that the test need not wait.
        rules = re.sub(r"for: \S+", "for: 1s", RULES.read_text())
        (directory / "alerts.yml").write_text(rules)
        scrape = "".join(
            f"  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            for job, target in targets.items()
        )
        (directory / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {directory / 'alerts.yml'}\nscrape_configs:\n{scrape}"
        )
        super().__init__(
            command=[
                "prometheus",
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            env={},
            log=directory / "prometheus.log",
        )

    def query(self, expression: str) -> dict[tuple, float]:
        """{labels (sorted, without __name__): value} of an instant query."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=5)
        response.raise_for_status()
        result = {}
        for series in response.json()["data"]["result"]:
            labels = tuple(sorted((k, v) for k, v in series["metric"].items() if k != "__name__"))
            result[labels] = float(series["value"][1])
        return result

    def firing(self) -> list[dict]:
        response = requests.get(f"{self.url}/api/v1/alerts", timeout=5)
        response.raise_for_status()
        return [
            alert["labels"]
            for alert in response.json()["data"]["alerts"]
            if alert["state"] == "firing"
        ]


def wait_for(check, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.25)


@pytest.fixture
def started(tmp_path):
    processes = []

    def start(process):
        process.start()
        processes.append(process)
        return process

    yield start
    for process in reversed(processes):
        process.kill()  # the test is over: no need to wait for a warm shutdown


@pytest.fixture
def live_worker(transactional_db, mailbox, tmp_path, settings, started):
    """A worker with beat, its metrics endpoint and JSON logs."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    port = free_port()
    env = portal_env(
        settings,
        broker_url=REDIS_URL,
        var_dir=tmp_path,
        shared=("EMAIL_HOST", "EMAIL_PORT", "PORTAL_BASE_URL"),
        OUTBOX_SWEEP_INTERVAL="1",
        WORKER_METRICS_LISTEN=f"127.0.0.1:{port}",
        LOG_FORMAT="json",
    )
    worker = WorkerProcess(env=env, log=tmp_path / "worker.log", beat=True)
    worker.metrics_address = f"127.0.0.1:{port}"
    use_broker(app, REDIS_URL)
    yield started(worker)
    use_broker(app, None)


def test_prometheus_sees_the_fleet_and_alerts_on_a_stuck_platform(
    live_worker, tmp_path, settings, started
):
    account = AccountFactory()
    now = timezone.now()

    def platform(state: str, number: int, since=now) -> Platform:
        made = Platform.objects.create(
            account=account, service=f"pe-live-{number}", order_number=880000 + number
        )
        Platform.objects.filter(pk=made.pk).update(state=state, state_changed_at=since)
        return made

    platform("ready", 1)
    platform("ready", 2)
    late = platform("configured", 3)

    web_port = free_port()
    web_env = portal_env(
        settings,
        broker_url=REDIS_URL,
        var_dir=tmp_path,
        shared=(),
        METRICS_ALLOWED_NETWORKS="127.0.0.1/32",
        METRICS_CACHE_SECONDS="0",
        PLATFORM_STUCK_AFTER=f"configured={STUCK_AFTER}",
        ALLOWED_HOSTS="127.0.0.1",
    )
    started(
        Gunicorn(
            command=[
                sys.executable,
                "-m",
                "gunicorn",
                "portal.wsgi",
                "--bind",
                f"127.0.0.1:{web_port}",
                "--workers",
                "1",
            ],
            env=web_env,
            log=tmp_path / "web.log",
        )
    )
    prometheus = started(
        Prometheus(
            directory=tmp_path,
            port=free_port(),
            targets={
                "portal": f"127.0.0.1:{web_port}",
                "portal-worker": live_worker.metrics_address,
            },
        )
    )

    # The series Prometheus scraped have the values the database has.
    expected = {
        state: Platform.objects.filter(state=state).count()
        for state in ("ready", "configured", "ordered")
    }
    assert expected == {"ready": 2, "configured": 1, "ordered": 0}
    wait_for(
        lambda: all(
            prometheus.query(f'portal_platforms{{job="portal",state="{state}"}}')
            and next(iter(prometheus.query(f'portal_platforms{{state="{state}"}}').values()))
            == count
            for state, count in expected.items()
        ),
        what="platform counts in Prometheus",
    )
    assert set(prometheus.query("portal_platforms_stuck > 0")) == set()
    # The worker's endpoint: it is up, beat's sweeps ran there, and they are recorded.
    wait_for(lambda: prometheus.query('up{job="portal-worker"} == 1'), what="the worker up")
    wait_for(
        lambda: prometheus.query(
            'portal_celery_tasks_total{task="provisioning.tasks.dispatch_due_jobs",'
            'outcome="success"} > 0'
        ),
        what="the sweep's task count",
    )
    outbox_sweeps = {
        "provisioning.tasks.dispatch_due_jobs",
        "notifications.tasks.dispatch_due_emails",
        "webhooks.tasks.dispatch_due_webhooks",
    }

    def every_sweep_seen():
        found = prometheus.query("portal_sweep_last_run_timestamp_seconds")
        return found if {dict(labels)["task"] for labels in found} >= outbox_sweeps else None

    sweeps = wait_for(every_sweep_seen, what="each outbox sweep's heartbeat")
    assert {dict(labels)["task"] for labels in sweeps} == outbox_sweeps
    assert all(time.time() - at < 30 for at in sweeps.values())
    assert not [a for a in prometheus.firing() if a["alertname"] == "PortalPlatformsStuck"]

    # A platform overstays its state: the alert fires, naming the state.
    Platform.objects.filter(pk=late.pk).update(state_changed_at=now.replace(year=now.year - 1))
    alert = wait_for(
        lambda: [a for a in prometheus.firing() if a["alertname"] == "PortalPlatformsStuck"],
        what="PortalPlatformsStuck firing",
    )
    assert [(a["state"], a["job"]) for a in alert] == [("configured", "portal")]

    # The worker goes away: Prometheus says so.
    live_worker.stop()
    wait_for(
        lambda: [a for a in prometheus.firing() if a["alertname"] == "PortalWorkerAbsent"],
        what="PortalWorkerAbsent firing",
    )


def test_worker_logs_json_lines_naming_the_platform_without_the_sweeps(live_worker, mailbox):
    platform = platform_order(account=AccountFactory(), actor="test")
    mailbox.wait_for(1, timeout=30)
    wait_for(
        lambda: (
            b"awaiting_setup (system)" in live_worker.output()
            and b"run_job" in live_worker.output()
        ),
        what="the delivery's log lines",
    )
    time.sleep(3)  # several sweeps, which must leave no line
    lines = [json.loads(line) for line in live_worker.output().splitlines() if line[:1] == b"{"]
    about = [line for line in lines if line.get("service") == platform.service]
    messages = [line["message"] for line in about]
    assert any(m.startswith("awaiting_setup (system): Addresses") for m in messages), messages
    assert any("provisioning.tasks.run_job" in m and "succeeded" in m for m in messages)
    assert {line["order_number"] for line in about} == {platform.order_number}
    assert not [line for line in lines if "dispatch_due" in line["message"]]
