"""Real processes for the integration layer: Celery workers and beat against Redis and the
test database, sending email to the test SMTP server; and private redis-server instances
that a test may stop, kill and start again without touching the machine's shared Redis.

``worker`` (a worker with embedded beat on the shared Redis) serves the plain worker tests;
tests/faults/ builds on ``RedisServer``, ``WorkerProcess``, ``BeatProcess`` and
``portal_env``.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.db import connection

from harness.processes import die_with_parent, free_port  # noqa: F401 (tests import free_port from here)

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
START_TIMEOUT = 30.0

# The settings a worker must share with the test process (which plays the web process):
# signed links, DCV code hashes and encrypted keys depend on SECRET_KEY; the rest says
# where the DNS primary, the CA and the SMTP server of the test are.
SHARED_SETTINGS = (
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "PORTAL_BASE_URL",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "FINALISATION_DELAY",
    "PLATFORM_IPV4_POOL",
    "PLATFORM_IPV6_POOL",
    "DNS_UPDATE_SERVER",
    "DNS_TSIG_KEY_NAME",
    "DNS_TSIG_ALGORITHM",
    "DNS_TSIG_SECRET",
    "DNS_CHECK_RESOLVERS",
    "DNS_TIMEOUT",
    "DNS_CHECK_INTERVAL",
    "CA_BACKEND",
    "CERT_KEY_TYPE",
    "ACME_DIRECTORY_URL",
    "ACME_CA_BUNDLE",
    "ACME_CONTACT_EMAIL",
    "ACME_EAB_KID",
    "ACME_EAB_HMAC_KEY",
    "CERTIFICATE_LIFETIME",
    "DCV_REUSE_PERIOD",
    "RENEWAL_REMINDER_SECONDS",
)


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = db["USER"] or "postgres"
        return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def portal_env(
    settings,
    *,
    broker_url: str,
    var_dir: Path,
    shared: tuple[str, ...] = SHARED_SETTINGS,
    **overrides,
) -> dict[str, str]:
    """The environment of a worker or beat process: this process's environment, with the
    test database, the broker, the test's values of the `shared` settings (those that are
    set) and `overrides` (e.g. JOB_LEASE_SECONDS="5")."""
    env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": broker_url}
    env["PORTAL_VAR_DIR"] = str(var_dir)
    for name in shared:
        value = getattr(settings, name, None)
        if isinstance(value, list | tuple):
            value = ",".join(str(item) for item in value)
        if value is not None and value != "":
            env[name] = str(value)
    env.update({name: str(value) for name, value in overrides.items()})
    return env


class ManagedProcess:
    """A child in a process group of its own (a Celery worker's pool processes included),
    logging to a file, ready once `ready` appears in what it logged since it started."""

    ready: bytes = b""

    def __init__(self, *, command: list[str], env: dict, log: Path) -> None:
        self.command, self.env, self.log = command, env, log
        self.process: subprocess.Popen | None = None
        self._log_offset = 0

    def start(self, timeout: float = START_TIMEOUT) -> None:
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.command[:6]} did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def is_ready(self) -> bool:
        return self.ready in self.output()

    def output(self) -> bytes:
        """What the process logged since its last start."""
        with self.log.open("rb") as log:
            log.seek(self._log_offset)
            return log.read()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 15) -> None:
        """Graceful stop (SIGTERM: a worker finishes its tasks first), SIGKILL if it hangs."""
        if not self.running:
            self._reap()
            return
        self._signal_group(signal.SIGCONT)  # in case it was paused
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL to the whole process group: the machine pulled out from under it."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.process.wait()
        self._reap()

    def pause(self) -> None:
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def _reap(self) -> None:
        # Pool processes left in the group (the main process is gone) are ended too.
        if self.process is not None:
            self._signal_group(signal.SIGKILL)


class WorkerProcess(ManagedProcess):
    """`celery -A portal worker` (prefork), with beat embedded when `beat` is true."""

    ready = b"ready."

    def __init__(self, *, env: dict, log: Path, beat: bool = False, concurrency: int = 2) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            f"--hostname=worker-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        if beat:
            command += ["--beat", "--schedule", str(log.with_suffix(".schedule"))]
        super().__init__(command=command, env=env, log=log)

    def received(self, task_name: str) -> list[str]:
        """Ids of the `task_name` messages this worker received, once per delivery."""
        marker = f"Task {task_name}[".encode()
        ids = []
        for line in self.log.read_bytes().splitlines():
            if marker in line and line.rstrip().endswith(b"received"):
                ids.append(line.split(marker, 1)[1].split(b"]", 1)[0].decode())
        return ids


class BeatProcess(ManagedProcess):
    """`celery -A portal beat`: the periodic sweeps of owed work, as a process of its own."""

    ready = b"beat: Starting"

    def __init__(self, *, env: dict, log: Path) -> None:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(log.with_suffix(".schedule")),
        ]
        super().__init__(command=command, env=env, log=log)


class RedisServer(ManagedProcess):
    """A private redis-server on a loopback port, without persistence: stopping it loses
    every queued message, as a crashed broker would."""

    def __init__(self, *, port: int, directory: Path) -> None:
        self.port = port
        command = [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ]
        super().__init__(command=command, env=dict(os.environ), log=directory / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def is_ready(self) -> bool:
        try:
            return redis.Redis(port=self.port, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False


@pytest.fixture
def worker(transactional_db, mailbox, tmp_path, settings):
    """A real worker with beat, on Redis; the test process publishes to the same Redis."""
    from portal.celery import app

    redis.Redis.from_url(REDIS_URL).flushdb()
    env = portal_env(
        settings,
        broker_url=REDIS_URL,
        var_dir=tmp_path,
        shared=("EMAIL_HOST", "EMAIL_PORT", "PORTAL_BASE_URL"),  # the rest: os.environ
        OUTBOX_SWEEP_INTERVAL="1",
        OUTBOX_REDISPATCH_AFTER="3",
    )
    process = WorkerProcess(env=env, log=tmp_path / "worker.log", beat=True)
    use_broker(app, REDIS_URL)
    process.start()
    yield process
    process.kill()  # the test is over: no need to wait for a warm shutdown
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
