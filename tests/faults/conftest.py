"""Fixtures of the fault tests: a private Redis, Celery worker and beat processes on it, and
an SMTP server that can refuse, hang or go away; all on free loopback ports, so a test may
stop and restart them without touching the machine's shared services."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.processes import free_port
from tests.faults.smtp import SmtpServer
from tests.processes import BeatProcess, RedisServer, WorkerProcess, portal_env, use_broker

# What the worker and beat processes run with: short sweeps, leases and backoff, so that a
# lost message or a killed worker is noticed within seconds instead of minutes.
FAST = {
    "OUTBOX_SWEEP_INTERVAL": "0.5",
    "OUTBOX_REDISPATCH_AFTER": "3",
    "JOB_LEASE_SECONDS": "5",
    "RETRY_BACKOFF_BASE": "0.5",
    "RETRY_BACKOFF_MAX": "4",
    "EMAIL_TIMEOUT": "5",
    "DNS_CHECK_INTERVAL": "1",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture
def smtp(settings) -> Iterator[SmtpServer]:
    """The SMTP server the worker processes send to (EMAIL_HOST / EMAIL_PORT)."""
    server = SmtpServer(port=free_port())
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.hostname, server.port
    yield server
    server.release()
    server.stop()


# Redis, worker and beat


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    """A private redis-server on a free port (no persistence)."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(port=free_port(), directory=directory)
    server.start()
    yield server
    server.stop()


class Portal:
    """The portal's background processes for one test: workers and beats on one broker,
    with the test's settings (SHARED_SETTINGS) and FAST; the test process is the web."""

    def __init__(self, *, settings, broker_url: str, directory: Path) -> None:
        self.settings, self.broker_url, self.directory = settings, broker_url, directory
        self.workers: list[WorkerProcess] = []
        self.beats: list[BeatProcess] = []

    def use_broker(self, url: str) -> None:
        """Another broker URL for the processes started from now on, and the test's."""
        from portal.celery import app

        self.broker_url = url
        use_broker(app, url)

    def env(self, **overrides) -> dict:
        return portal_env(
            self.settings,
            broker_url=self.broker_url,
            var_dir=self.directory,
            **{**FAST, **overrides},
        )

    def start_worker(self, *, concurrency: int = 2, **overrides) -> WorkerProcess:
        log = self.directory / f"worker-{len(self.workers) + 1}.log"
        worker = WorkerProcess(env=self.env(**overrides), log=log, concurrency=concurrency)
        self.workers.append(worker)
        worker.start()
        return worker

    def start_beat(self, **overrides) -> BeatProcess:
        beat = BeatProcess(
            env=self.env(**overrides), log=self.directory / f"beat-{len(self.beats) + 1}.log"
        )
        self.beats.append(beat)
        beat.start()
        return beat

    @property
    def worker(self) -> WorkerProcess:
        """The worker started last."""
        return self.workers[-1]

    def received(self, task_name: str) -> list[str]:
        """Task ids received by every worker of the test, once per delivery."""
        return [i for worker in self.workers for i in worker.received(task_name)]

    def logs(self) -> str:
        return "\n".join(
            f"--- {process.log.name}\n{process.log_tail(60)}"
            for process in [*self.workers, *self.beats]
        )

    def stop(self) -> None:
        """The test is over: no need to wait for a warm shutdown."""
        for process in [*self.beats, *self.workers]:
            process.kill()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows what its worker and beat processes logged last."""
    report = yield
    portal = getattr(item, "funcargs", {}).get("portal")
    if report.when == "call" and report.failed and isinstance(portal, Portal):
        report.sections.append(("worker and beat logs", portal.logs()))
    return report


@pytest.fixture
def portal(transactional_db, smtp, redis_server, tmp_path, settings) -> Iterator[Portal]:
    """Workers and beat are started by the test (portal.start_worker(), start_beat()); the
    test process publishes to the same Redis, as the web process does."""
    from portal.celery import app

    portal = Portal(settings=settings, broker_url=redis_server.url, directory=tmp_path)
    use_broker(app, portal.broker_url)
    yield portal
    portal.stop()
    use_broker(app, None)


@pytest.fixture
def dns(bind, settings):
    """The shared BIND9 primary (tests/bind.py) as the portal's DNS: DNS Assist writes to
    it with TSIG, and record checks ask it."""
    bind.configure(settings)
    return bind
