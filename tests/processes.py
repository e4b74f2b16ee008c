"""Real Celery worker (and beat) processes for the integration layer, against Redis and the
test database, sending email to the test SMTP server."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = db["USER"] or "postgres"
        return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


class WorkerProcess:
    def __init__(self, *, env: dict, log: Path, beat: bool) -> None:
        self.env, self.log, self.beat = env, log, beat
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
        ]
        if self.beat:
            command += ["--beat", "--schedule", str(self.log.with_suffix(".schedule"))]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while b"ready." not in self.log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def worker(transactional_db, mailbox, tmp_path, settings):
    """A real worker with beat, on Redis; the test process publishes to the same Redis."""
    from portal.celery import app

    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "EMAIL_HOST": settings.EMAIL_HOST,
        "EMAIL_PORT": str(settings.EMAIL_PORT),
        "OUTBOX_SWEEP_INTERVAL": "1",
        "OUTBOX_REDISPATCH_AFTER": "3",
        "PORTAL_VAR_DIR": str(tmp_path),
        "PORTAL_BASE_URL": settings.PORTAL_BASE_URL,
    }
    process = WorkerProcess(env=env, log=tmp_path / "worker.log", beat=True)
    use_broker(app, REDIS_URL)
    process.start()
    yield process
    process.stop()
    use_broker(app, None)


def use_broker(app, url: str | None) -> None:
    """Publish from the test process to `url` (None: back to eager execution), dropping
    connections cached for the previous broker."""
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = url
    app.conf.task_always_eager = url is None
