"""What every benchmark needs, all on loopback: its own PostgreSQL database (cloned from a
seeded template), its own redis-server, a BIND9 primary, an SMTP sink, child processes
whose CPU time is counted, and a folder for logs and profiles.

Call ``environment(...)`` before ``django.setup()``: the portal reads its settings from
the environment, exactly as in production.
"""

import hashlib
import json
import os
import platform as platform_module
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from harness.processes import die_with_parent, free_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# Two checkouts benchmarking on one server keep to their own databases.
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "portal_bench")
# RFC 2544's benchmarking range: room for 131,070 platforms, never routed anywhere.
IPV4_POOL = "198.18.0.0/15"
IPV6_POOL = "2001:db8:100::/64"
ZONE = "bench.test"
NAMED = "/usr/sbin/named"
TSIG_KEY_NAME = "portal-bench"
TSIG_ALGORITHM = "hmac-sha256"


def run_dir(name: str) -> Path:
    """var/benchmarks/<name>-<UTC time>/ for logs, profiles and the JSON of the figures."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = ROOT / "var" / "benchmarks" / f"{name}-{stamp}"
    path.mkdir(parents=True, exist_ok=True)
    return path


# PostgreSQL: one database per benchmark, cloned from a migrated (and seeded) template.


def _pg(sql: str, *, database: str = "postgres") -> list[tuple]:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/{database}", autocommit=True) as connection:
        cursor = connection.execute(sql)
        return cursor.fetchall() if cursor.description else []


def schema_key() -> str:
    """Changes whenever a migration is added or edited: seeded templates are rebuilt then."""
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/[0-9]*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    digest.update((ROOT / "benchmarks" / "seed.py").read_bytes())
    return digest.hexdigest()[:10]


def _drop(name: str) -> None:
    _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _exists(name: str) -> bool:
    return bool(_pg(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"))  # noqa: S608


def template_database(platforms: int) -> str:
    """A migrated database holding `platforms` seeded platforms, built once per schema."""
    name = f"{DB_PREFIX}_seed_{platforms}_{schema_key()}"
    if _exists(name):
        return name
    for (stale,) in _pg(
        f"SELECT datname FROM pg_database WHERE starts_with(datname, '{DB_PREFIX}_seed_')"  # noqa: S608
    ):
        if stale.startswith(f"{DB_PREFIX}_seed_{platforms}_"):  # an older schema's
            _drop(stale)
    building = name + "_building"
    _drop(building)
    _pg(f'CREATE DATABASE "{building}"')
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": f"{PG_SERVER}/{building}",
        "PLATFORM_IPV4_POOL": IPV4_POOL,
        "PLATFORM_IPV6_POOL": IPV6_POOL,
        "LOG_LEVEL": "WARNING",
    }
    started = time.monotonic()
    subprocess.run(  # noqa: S603
        [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    if platforms:
        print(f"  seeding {platforms:,} platforms into a template (once per schema)…", flush=True)
        subprocess.run(  # noqa: S603
            [PYTHON, "-m", "benchmarks.seed", "--platforms", str(platforms)],
            cwd=ROOT,
            env=env,
            check=True,
        )
        _pg("VACUUM ANALYZE", database=building)
    _pg(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    print(f"  template {name} ready in {time.monotonic() - started:.0f} s", flush=True)
    return name


def fresh_database(name: str, *, platforms: int = 0) -> str:
    """Drop and recreate `name` as a copy of the seeded template; returns its URL."""
    template = template_database(platforms)
    _drop(name)
    _pg(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return f"{PG_SERVER}/{name}"


def add_database_options(parser) -> None:
    """The experiments on what bounds the figures; the defaults are the deployed portal."""
    parser.add_argument(
        "--no-commit-wait",
        action="store_true",
        help="synchronous_commit=off for the benchmark's database (an experiment: commits "
        "then do not wait for the WAL flush)",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=None,
        help="CONN_MAX_AGE through DATABASE_URL (default: the portal's own, as deployed)",
    )


def benchmark_database(name: str, args) -> str:
    """A fresh copy of the seeded template with the options of add_database_options."""
    url = fresh_database(name, platforms=args.platforms)
    if args.conn_max_age is not None:
        url += f"?conn_max_age={args.conn_max_age}"
    if args.no_commit_wait:
        database_setting(name, "synchronous_commit", "off")
    return url


def database_setting(name: str, setting: str, value: str) -> None:
    """A PostgreSQL setting for the sessions of one database only (ALTER DATABASE … SET)."""
    _pg(f'ALTER DATABASE "{name}" SET {setting} = {value}')


# Servers.


@dataclass
class Process:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    name: str
    command: list[str]
    log: Path
    env: dict | None = None
    popen: subprocess.Popen | None = None

    def start(self) -> "Process":
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # a benchmark killed outright takes its servers along
            )
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def redis_server(directory: Path) -> tuple[Process, str]:
    """A redis-server of the benchmark's own, on a free port, without persistence."""
    port = free_port()
    process = Process(
        "redis",
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        directory / "redis.log",
    ).start()
    process.wait_for_log("Ready to accept connections")
    return process, f"redis://127.0.0.1:{port}/0"


@dataclass
class Bind:
    process: Process
    port: int
    secret: str

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def settings(self) -> dict[str, str]:
        """The portal's environment for DNS Assist over RFC 2136 and checks against it."""
        return {
            "DNS_UPDATE_SERVER": self.address,
            "DNS_TSIG_KEY_NAME": TSIG_KEY_NAME,
            "DNS_TSIG_ALGORITHM": TSIG_ALGORITHM,
            "DNS_TSIG_SECRET": self.secret,
            "DNS_CHECK_RESOLVERS": self.address,
            "DNS_TIMEOUT": "5",
        }


def bind_server(directory: Path) -> Bind:
    """BIND9 as the primary of ZONE, open to updates signed with a fresh TSIG key."""
    directory = directory / "bind"
    directory.mkdir()
    clause = subprocess.run(  # noqa: S603
        ["tsig-keygen", "-a", TSIG_ALGORITHM, TSIG_KEY_NAME],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    secret = re.search(r'secret "([^"]+)"', clause).group(1)
    port = free_port()
    (directory / f"{ZONE}.zone").write_text(
        f"$ORIGIN {ZONE}.\n$TTL 3600\n"
        f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 900 1209600 300\n"
        f"@ IN NS ns.{ZONE}.\nns IN A 127.0.0.1\n"
    )
    (directory / "named.conf").write_text(
        f"{clause}\noptions {{\n"
        f'  directory "{directory}";\n  pid-file "{directory}/named.pid";\n'
        f'  session-keyfile "{directory}/session.key";\n'
        f'  managed-keys-directory "{directory}";\n'
        f"  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n"
        "  recursion no;\n  dnssec-validation no;\n  notify no;\n};\ncontrols { };\n"
        f'zone "{ZONE}" {{ type primary; file "{ZONE}.zone"; '
        f"allow-update {{ key {TSIG_KEY_NAME}; }}; }};\n"
    )
    process = Process(
        "named",
        [NAMED, "-g", "-n", "1", "-c", str(directory / "named.conf")],
        directory / "named.log",
    ).start()
    process.wait_for_log("running")
    return Bind(process=process, port=port, secret=secret)


class _Forward:
    """aiosmtpd handler: every message's bytes, with the time received, into a queue."""

    def __init__(self, inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server, session, envelope):
        self.inbox.put((time.monotonic(), envelope.content))
        return "250 OK"


def _serve_smtp(port: int, inbox, stop) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(_Forward(inbox), hostname="127.0.0.1", port=port)
    controller.start()
    stop.wait()
    controller.stop()


@dataclass
class MailSink:
    """A real SMTP server in a process of its own (so that the SMTP sessions of the worker
    never wait for this process's interpreter); `receive()` gives the next message with
    the time it arrived."""

    port: int = 0
    process: object = None
    inbox: object = None
    stop_event: object = None

    def start(self) -> "MailSink":
        import multiprocessing

        context = multiprocessing.get_context("fork")  # before Django is set up
        self.inbox, self.stop_event = context.Queue(), context.Event()
        self.port = free_port()
        self.process = context.Process(
            target=_serve_smtp, args=(self.port, self.inbox, self.stop_event), daemon=True
        )
        self.process.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def receive(self, timeout: float) -> tuple[float, EmailMessage]:
        """(monotonic time received, message); queue.Empty after timeout."""
        when, content = self.inbox.get(timeout=timeout)
        return when, message_from_bytes(content, policy=policy.default)

    def stop(self) -> None:
        self.stop_event.set()
        self.process.join(timeout=10)


def text_body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


# The portal's environment.


def environment(
    *,
    database_url: str,
    broker_url: str = "memory://",
    directory: Path,
    extra: dict | None = None,
) -> dict[str, str]:
    """Set the portal's settings for this process (and return them for the children)."""
    values = {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "PORTAL_VAR_DIR": str(directory),
        "PLATFORM_IPV4_POOL": IPV4_POOL,
        "PLATFORM_IPV6_POOL": IPV6_POOL,
        "SECRET_KEY": "benchmark-secret-key-not-for-production-0123456789",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        **(extra or {}),
    }
    os.environ.update(values)
    return {**os.environ}


# CPU accounting from /proc: who used the two cores during a measurement.

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, CPU seconds used, CPU seconds of its children already reaped)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    return int(fields[1]), own, reaped


def _processes() -> dict[int, tuple[int, float, float, str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is None:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(entry.name)] = (*stat, cmdline)
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLOCK_TICKS, sum(values[:8]) / CLOCK_TICKS


class CpuMeter:
    """CPU seconds used between start() and stop() by named groups of processes: a root
    pid with its descendants (an int), one process alone (("pid", pid)), or every process
    whose command line contains a text."""

    @staticmethod
    def postmaster() -> int:
        """The PostgreSQL server's main process: its tree is every backend, of every
        database (other users of the server count too)."""
        directory = _pg("SHOW data_directory")[0][0]
        return int(Path(directory, "postmaster.pid").read_text().split("\n", 1)[0])

    def __init__(self, groups: dict[str, int | str | tuple[str, int]]) -> None:
        self.groups = groups

    def _sample(self) -> dict[str, float]:
        processes = self._processes = _processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, *_) in processes.items():
            children.setdefault(ppid, []).append(pid)
        totals = {}
        for name, selector in self.groups.items():
            if isinstance(selector, tuple):
                pid = selector[1]
                totals[name] = {pid: processes[pid][1]} if pid in processes else {}
            elif isinstance(selector, int):
                # The tree under the pid, plus the children it reaped (exited workers,
                # closed database sessions).
                pids, stack = [], [selector]
                while stack:
                    pid = stack.pop()
                    pids.append(pid)
                    stack.extend(children.get(pid, []))
                totals[name] = {pid: processes[pid][1] for pid in pids if pid in processes}
                if selector in processes:
                    totals[name]["reaped"] = processes[selector][2]
            else:
                pids = [pid for pid, (*_, cmd) in processes.items() if selector in cmd]
                totals[name] = {pid: processes[pid][1] for pid in pids}
        return totals

    def start(self) -> None:
        self.started = time.monotonic()
        self.before = self._sample()
        # The children each tree's root reaps (their CPU then moves to its "reaped").
        roots = {selector for selector in self.groups.values() if isinstance(selector, int)}
        self.direct = {pid for pid, (ppid, *_) in self._processes.items() if ppid in roots}
        self.machine_before = machine_busy()

    def stop(self) -> dict:
        after = self._sample()
        busy_after, total_after = machine_busy()
        elapsed = time.monotonic() - self.started
        used = {}
        for name, pids in after.items():
            # A process that started during the measurement counts from zero.
            used[name] = sum(cpu - self.before[name].get(pid, 0.0) for pid, cpu in pids.items())
            # One that ended was reaped with its whole life's CPU: what it had used before
            # the measurement is not the measurement's (a long database session closing).
            used[name] -= sum(
                cpu
                for pid, cpu in self.before[name].items()
                if pid in self.direct and pid not in pids
            )
        busy = busy_after - self.machine_before[0]
        # A group named "of which …" is a part of another one: not added twice.
        counted = sum(value for name, value in used.items() if not name.startswith("of which"))
        return {
            "elapsed": elapsed,
            "cpu_seconds": {name: round(value, 2) for name, value in used.items()},
            "machine_busy_seconds": round(busy, 2),
            "machine_utilisation": round(busy / (total_after - self.machine_before[1]), 3),
            "others_cpu_seconds": round(busy - counted, 2),
        }


def describe_cpu(measure: dict) -> str:
    parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in measure["cpu_seconds"].items())
    return (
        f"CPU seconds over {measure['elapsed']:.1f} s: {parts}, everything else "
        f"{measure['others_cpu_seconds']:.1f}; machine {measure['machine_utilisation']:.0%} busy "
        f"(2 cores = {2 * measure['elapsed']:.1f} CPU seconds)"
    )


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def machine() -> dict:
    return {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform_module.python_version(),
        "load_average_before": Path("/proc/loadavg").read_text().split()[:3],
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def save(directory: Path, name: str, figures: dict) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return path


def py_spy(pid: int, *, seconds: int, output: Path, subprocesses: bool = True) -> Process | None:
    """Sample a process (and its children) with py-spy into a collapsed-stacks file (one
    "frame;frame;… count" line per stack, as flamegraph.pl takes); None without py-spy.

    Threads py-spy sees idle (blocked on a socket, sleeping) are left out; the wait for
    PostgreSQL's answer inside psycopg is not recognised as idle, so it shows, and the
    summaries name it. Not --gil: cryptography's key generation runs without the GIL."""
    executable = Path(PYTHON).with_name("py-spy")
    if not executable.exists():
        return None
    command = [
        str(executable),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(output),
        "--nonblocking",
    ]
    if subprocesses:
        command.append("--subprocesses")
    return Process("py-spy", command, output.with_suffix(".log")).start()


def _samples(path: Path) -> list[tuple[str, int]]:
    """(stack, sample count) for each line of a py-spy raw (collapsed stacks) file."""
    samples = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            samples.append((stack, int(count)))
    return samples


def _shares(totals: dict[str, int], total: int) -> dict[str, float]:
    return {name: value / total for name, value in totals.items()} if total else {}


def summarise_collapsed(path: Path, *, top: int = 15, frames: int = 1) -> list[tuple[str, float]]:
    """The functions (leaf frames) with the largest share of samples in a py-spy raw
    (collapsed stacks) file; frames > 1 groups by the leaf's callers too."""
    counts: dict[str, int] = {}
    samples = _samples(path)
    for stack, count in samples:
        leaf = ";".join(stack.split(";")[-frames:])
        counts[leaf] = counts.get(leaf, 0) + count
    ranked = dict(sorted(counts.items(), key=lambda item: -item[1])[:top])
    return list(_shares(ranked, sum(count for _, count in samples)).items())


def inclusive_share(path: Path, needles: dict[str, str]) -> dict[str, float]:
    """Share of samples whose stack contains each needle (a function or module name)."""
    totals = dict.fromkeys(needles, 0)
    samples = _samples(path)
    for stack, count in samples:
        for name, needle in needles.items():
            if needle in stack:
                totals[name] += count
    return _shares(totals, sum(count for _, count in samples))


def attribute(path: Path, categories: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """Each sample given to one category: walking its stack from the innermost frame out,
    the first frame that matches a category's needles (categories tried in order for each
    frame) decides; "other" when none does. The shares add up to 1: who spent the time."""
    totals = dict.fromkeys([*categories, "other"], 0)
    samples = _samples(path)
    for stack, count in samples:
        found = "other"
        for frame in reversed(stack.split(";")):
            found = next(
                (name for name, needles in categories.items() if any(n in frame for n in needles)),
                None,
            )
            if found:
                break
        totals[found or "other"] += count
    return _shares(totals, sum(count for _, count in samples))
