"""The deployed topology, started from the files a hoster installs: the systemd units of
deploy/systemd/ (their ExecStartPre and ExecStart lines, environment and stop signal), the
environment file made from deploy/portal.env.example and nginx with deploy/nginx/'s site.

systemd does not run here: `Unit` reads a unit file and these helpers do what systemd would
with it. The install-time values of the files (paths, ports, the host name) are replaced by
the test's (nginx's site must hold every value the test replaces in it, so that a changed
file cannot go untested; a unit is started from its own paths, which must then exist).
"""

import http.client
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.processes import ROOT, ManagedProcess

DEPLOY = ROOT / "deploy"
INSTALL_DIR = "/opt/private-exchange"
ENV_FILE = "/etc/private-exchange/portal.env"
STATE_DIR = "/var/lib/private-exchange"
# What systemd gives a service before its Environment= and EnvironmentFile=.
SYSTEMD_BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", "LANG": "C.UTF-8"}
NGINX = "/usr/sbin/nginx"


def render(text: str, replacements: dict[str, str]) -> str:
    """`text` with each key replaced by its value, longest keys first."""
    for old in sorted(replacements, key=len, reverse=True):
        assert old in text, f"{old!r} is no longer in the file: update tests/deploy/"
        text = text.replace(old, replacements[old])
    return text


def read_environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments, quotes)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        name, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def write_environment_file(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    path.chmod(0o600)


class Unit:
    """A systemd unit file: its [Service] settings, repeated keys kept in order."""

    def __init__(self, text: str, name: str) -> None:
        self.name = name
        self.settings: dict[str, list[str]] = {}
        section = ""
        for line in text.replace("\\\n", " ").splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
            elif section == "Service":
                key, _, value = line.partition("=")
                self.settings.setdefault(key.strip(), []).append(value.strip())

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self.settings.get(key)
        return values[-1] if values else default

    def commands(self, key: str) -> list[list[str]]:
        """The command lines of ExecStart= or ExecStartPre=, split as systemd splits them.
        Specifiers (%) and variables ($) are not expanded here, so none may be used."""
        commands = []
        for line in self.settings.get(key, []):
            line = line.lstrip("-@:+!")
            assert "$" not in line and "%" not in line, f"{self.name}: {line}"
            commands.append(shlex.split(line))
        return commands

    def environment(self) -> dict[str, str]:
        """The environment systemd would give the service."""
        env = dict(SYSTEMD_BASE_ENV)
        for line in self.settings.get("Environment", []):
            for assignment in shlex.split(line):
                name, _, value = assignment.partition("=")
                env[name] = value
        for path in self.settings.get("EnvironmentFile", []):
            env.update(read_environment_file(Path(path.lstrip("-"))))
        return env

    def stop_timeout(self) -> float:
        return float(self.get("TimeoutStopSec", "90").rstrip("s"))


def unit_replacements(*, env_file: Path, state_dir: Path, gunicorn_port: int) -> dict[str, str]:
    """The units' install-time values and the test's: the virtualenv running the tests, this
    checkout, the test's environment file and state directory, a free port."""
    return {
        f"{INSTALL_DIR}/.venv": sys.prefix,
        INSTALL_DIR: str(ROOT),
        ENV_FILE: str(env_file),
        STATE_DIR: str(state_dir),
        "127.0.0.1:8000": f"127.0.0.1:{gunicorn_port}",
    }


def read_unit(name: str, replacements: dict[str, str]) -> Unit:
    text = (DEPLOY / "systemd" / name).read_text()
    used = {old: new for old, new in replacements.items() if old in text}
    return Unit(render(text, used), name)


class UnitProcess(ManagedProcess):
    """The ExecStart line of a unit, after its ExecStartPre lines, in its environment."""

    def __init__(self, unit: Unit, *, log: Path, ready: bytes = b"") -> None:
        assert unit.get("WorkingDirectory") == str(ROOT), unit.get("WorkingDirectory")
        (command,) = unit.commands("ExecStart")
        super().__init__(command=command, env=unit.environment(), log=log)
        self.unit = unit
        self.ready = ready

    def start(self, timeout: float = 60.0) -> None:
        for command in self.unit.commands("ExecStartPre"):
            with self.log.open("ab") as output:
                subprocess.run(
                    command, cwd=ROOT, env=self.env, stdout=output, stderr=output, check=True
                )
        super().start(timeout=timeout)

    def systemd_stop(self) -> int:
        """`systemctl stop`: KillSignal to the main process (KillMode=mixed) or to every
        process of the service (the default, control-group); SIGKILL to all after
        TimeoutStopSec. Returns the main process's exit status."""
        sig = getattr(signal, self.unit.get("KillSignal", "SIGTERM"))
        if self.unit.get("KillMode", "control-group") == "mixed":
            self.process.send_signal(sig)
        else:
            self._signal_group(sig)
        try:
            return self.process.wait(timeout=self.unit.stop_timeout())
        finally:
            self.kill()


class Gunicorn(UnitProcess):
    """Ready once it answers HTTP on its loopback port."""

    def __init__(self, unit: Unit, *, log: Path, port: int) -> None:
        super().__init__(unit, log=log)
        self.port = port

    def is_ready(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/login/")
            connection.getresponse().read()
            return True
        except OSError:
            return False
        finally:
            connection.close()


class Nginx(ManagedProcess):
    """nginx in the foreground with the site's file included in a minimal main file."""

    def __init__(self, *, directory: Path, site: Path, https_port: int) -> None:
        self.https_port = https_port
        log = directory / "nginx.log"
        main = directory / "nginx.conf"
        temp = {
            name: directory / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        }
        main.write_text(
            # As root, nginx would run its workers as nobody, who cannot enter pytest's
            # temporary directory; a hoster's Debian nginx.conf says www-data.
            "daemon off;\nuser root;\nworker_processes 1;\n"
            f"pid {directory / 'nginx.pid'};\nerror_log {log} info;\n"
            "events { worker_connections 256; }\n"
            "http {\n  include /etc/nginx/mime.types;\n"
            f"  access_log {directory / 'access.log'};\n"
            + "".join(f"  {name}_temp_path {path};\n" for name, path in temp.items())
            + f"  include {site};\n}}\n"
        )
        super().__init__(
            command=[NGINX, "-p", str(directory), "-c", str(main), "-e", str(log)],
            env={**SYSTEMD_BASE_ENV},
            log=log,
        )

    def is_ready(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.https_port), 1).close()
        except OSError:
            return False
        return True
