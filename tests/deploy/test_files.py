"""The files a hoster deploys with cannot drift from the code: docker-compose.yml is valid
(Debian's docker-compose parses it without a container engine) and every command,
environment variable and health check in it, in the Dockerfile and in the systemd units
exists in the project; the Dockerfile's build step collects the static files."""

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands, load_command_class
from django.urls import Resolver404, resolve

from tests.deploy.stack import (
    DEPLOY,
    SYSTEMD_BASE_ENV,
    Unit,
    read_environment_file,
    render,
    unit_replacements,
)
from tests.processes import ROOT

DOCKER_COMPOSE = "/usr/bin/docker-compose"
SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"
ENV_READERS = {"str", "bool", "int", "float", "list", "dict", "tuple", "json", "url", "path"}
ENV_READERS |= {"db", "db_url", "cache", "cache_url", "email", "email_url"}
# Read by Django and Python themselves rather than by our settings.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR"}
# What any production process needs to load the settings, for the checks that load them.
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "portal.production",
    "SECRET_KEY": "files-check-secret-" + "x" * 40,
    "ORDER_API_TOKEN": "files-check-token-" + "x" * 32,
    "FIELD_ENCRYPTION_KEY": "Fr2s2YqWq7Ujq8QwnX5Yg7N0hJmC5hJ3bK9u1lq0tWs=",
}


def environment_names_read() -> set[str]:
    """The variables portal/settings.py and portal/production.py read: the first argument
    of every `env.<reader>("NAME", ...)`, `env("NAME")` and `_required("NAME")`."""
    names = set()
    for path in (ROOT / "portal" / "settings.py", ROOT / "portal" / "production.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            first, func = node.args[0], node.func
            reads = (isinstance(func, ast.Attribute) and func.attr in ENV_READERS) or (
                isinstance(func, ast.Name) and func.id in {"env", "_required"}
            )
            if reads and isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def test_the_settings_reader_finds_the_settings():
    names = environment_names_read()
    assert {"DATABASE_URL", "PORTAL_VAR_DIR", "SECRET_KEY", "CACHE_URL"} <= names
    assert "SECURE_SSL_REDIRECT" in names  # production.py's own


@pytest.fixture(scope="module")
def compose(tmp_path_factory) -> dict:
    """`docker-compose config`: the file validated, anchors, env_file and defaults resolved.
    Run on a copy with .env.example as .env, the file the README says to start from."""
    if not os.access(DOCKER_COMPOSE, os.X_OK):
        pytest.fail("docker-compose is missing: apt-get install docker-compose (scripts/test)")
    directory = tmp_path_factory.mktemp("compose")
    shutil.copy(ROOT / "docker-compose.yml", directory)
    shutil.copy(ROOT / ".env.example", directory / ".env")
    result = subprocess.run(
        [DOCKER_COMPOSE, "config"], cwd=directory, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def portal_services(compose: dict) -> dict[str, dict]:
    """The services that run the project's image."""
    services = {name: s for name, s in compose["services"].items() if "build" in s}
    assert {"web", "worker", "beat"} <= services.keys()
    return services


def check_command(command: list[str], env: dict[str, str]) -> None:
    """The command is one of the project's and takes these arguments: a manage.py command
    parses them, celery and gunicorn load the project with them."""
    program, *args = command
    if program in ("python", "python3") and args[:1] == ["manage.py"]:
        name, *options = args[1:]
        app = get_commands().get(name)
        assert app is not None, f"manage.py has no command {name!r}"
        parser = load_command_class(app, name).create_parser("manage.py", name)
        parser.parse_args(options)  # exits (fails the test) on an unknown option
    elif program == "celery":
        run = [sys.executable, "-m", "celery", *args, "--help"]  # unknown options refused
        result = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{command}: {result.stderr}"
        assert args[:2] == ["-A", "portal"], command
    elif program == "gunicorn":
        run = [sys.executable, "-m", "gunicorn", *args, "--check-config"]  # imports the app
        result = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    else:
        raise AssertionError(f"not a command of the project: {command}")


def split_shell(command: str | list[str]) -> list[list[str]]:
    """A compose command as the commands it runs: `sh -c "a && b"` is a and b."""
    words = shlex.split(command) if isinstance(command, str) else command
    if words[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in words[2].split("&&")]
    return [words]


def service_env(service: dict) -> dict[str, str]:
    env = {**os.environ, **{k: str(v) for k, v in service.get("environment", {}).items()}}
    return {**env, **PRODUCTION_ENV, "PORTAL_VAR_DIR": env.get("PORTAL_VAR_DIR", "/tmp")}


def test_compose_environment_is_read_by_the_settings(compose):
    known = environment_names_read() | NOT_SETTINGS
    for name, service in portal_services(compose).items():
        unknown = set(service.get("environment", {})) - known
        assert not unknown, f"{name}: the settings read no {sorted(unknown)}"


def test_compose_commands_exist(compose, tmp_path):
    for name, service in portal_services(compose).items():
        assert "command" in service, f"{name}: the image's CMD is checked with the Dockerfile"
        for command in split_shell(service["command"]):
            check_command(command, {**service_env(service), "PORTAL_VAR_DIR": str(tmp_path)})


def test_compose_health_checks_exist(compose, tmp_path):
    checked = 0
    for name, service in compose["services"].items():
        test = service.get("healthcheck", {}).get("test")
        if not test or test == ["NONE"]:
            continue
        words = test[1:] if test[0] == "CMD" else shlex.split(" ".join(test[1:]))
        if "build" in service:
            # An HTTP check asks for a page the portal has; any other runs our commands.
            urls = re.findall(r"https?://[^/\s'\"]+(/[^\s'\"]*)", " ".join(words))
            for path in urls:
                try:
                    resolve(path.split("?")[0])
                except Resolver404:
                    pytest.fail(f"{name}: the health check asks for {path}, which is no page")
            if not urls:
                env = {**service_env(service), "PORTAL_VAR_DIR": str(tmp_path)}
                for command in split_shell(words):
                    check_command(command, env)
        else:  # an image's own tool, named by the service's image
            assert words[0] in {"pg_isready", "redis-cli", "dig"}, (name, words)
        checked += 1
    assert checked >= 2


def test_compose_redis_keeps_nothing_on_disk(compose):
    """The cache's copies of sessions: a snapshot restored after a logout would bring the
    deleted session back (portal/sessions.py). The owed work lives in PostgreSQL."""
    cache_host = compose["services"]["web"]["environment"]["CACHE_URL"].split("/")[2]
    command = compose["services"][cache_host.split(":")[0]]["command"]
    words = command if isinstance(command, list) else shlex.split(command)
    assert words[words.index("--save") + 1] == ""
    assert words[words.index("--appendonly") + 1] == "no"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        tuple(line.split(None, 1))
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def dockerfile_env() -> dict[str, str]:
    env = {}
    for instruction, value in dockerfile_instructions():
        if instruction == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(value))
    return env


def test_dockerfile_environment_and_command(tmp_path):
    env = dockerfile_env()
    assert env["DJANGO_SETTINGS_MODULE"] == "portal.production"
    assert set(env) - environment_names_read() - NOT_SETTINGS == set()
    (cmd,) = [
        json.loads(value)
        for instruction, value in dockerfile_instructions()
        if instruction == "CMD"
    ]
    check_command(cmd, {**os.environ, **env, **PRODUCTION_ENV, "PORTAL_VAR_DIR": str(tmp_path)})


def test_the_image_build_collects_hashed_static_files(tmp_path):
    """The Dockerfile's collectstatic step, run as written (its ENV, its variables, with
    the image's PORTAL_VAR_DIR moved to a temporary directory), writes the manifest that
    production's `{% static %}` reads: the portal's and the admin's files under hashed
    names."""
    (step,) = [
        part
        for instruction, value in dockerfile_instructions()
        if instruction == "RUN"
        for part in value.split("&&")
        if "collectstatic" in part
    ]
    words = shlex.split(step)
    assignments = {}
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        assignments[name] = value
    assert words[:2] == ["python", "manage.py"], words
    env = {**os.environ, **dockerfile_env(), **assignments, "PORTAL_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, *words[1:]], cwd=ROOT, env=env, check=True)
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())["paths"]
    for name in ("portal/portal.css", "portal/setup.js", "admin/css/base.css"):
        hashed = manifest[name]
        assert re.fullmatch(rf"{name.rsplit('.', 1)[0]}\.[0-9a-f]{{12}}\.\w+", hashed)
        assert (tmp_path / "static" / hashed).is_file()
        assert (tmp_path / "static" / f"{hashed}.gz").is_file()


# The machine's files: the environment file, the systemd units.


def test_the_environment_file_holds_settings_and_reads_alike_in_the_shell():
    """systemd reads it as EnvironmentFile=, deploy/manage sources it with sh: both must
    see the same values, and each must be a variable the settings read."""
    path = DEPLOY / "portal.env.example"
    systemd = read_environment_file(path)
    assert set(systemd) - environment_names_read() - NOT_SETTINGS == set()
    shell = subprocess.run(
        ["sh", "-c", 'set -a; . "$0"; exec env -0', str(path)],
        env=SYSTEMD_BASE_ENV,
        capture_output=True,
        check=True,
    ).stdout.decode()
    values = dict(item.split("=", 1) for item in shell.split("\0") if item)
    assert {name: values.get(name) for name in systemd} == systemd
    assert systemd["DEFAULT_FROM_EMAIL"] == "Private Exchange <noreply@example.net>"


UNITS = ("private-exchange-web.service", "private-exchange-worker.service")
UNITS += ("private-exchange-beat.service",)


def read_units(tmp_path: Path) -> dict[str, Path]:
    """The units with the virtualenv and checkout of the tests, as files."""
    replacements = unit_replacements(
        env_file=tmp_path / "portal.env", state_dir=tmp_path, gunicorn_port=8000
    )
    rendered = {}
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text()
        rendered[name] = tmp_path / name
        rendered[name].write_text(
            render(text, {old: new for old, new in replacements.items() if old in text})
        )
    return rendered


def test_systemd_verifies_the_units(tmp_path):
    if not os.access(SYSTEMD_ANALYZE, os.X_OK):
        pytest.fail("systemd-analyze is missing: apt-get install systemd (scripts/test)")
    units = read_units(tmp_path)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", *map(str, units.values())],
        capture_output=True,
        text=True,
        check=False,
    )
    # systemd-analyze warns about settings it ignores yet exits 0: both must be clean.
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def test_the_units_share_one_environment_file_and_restart(tmp_path):
    for name, path in read_units(tmp_path).items():
        unit = Unit(path.read_text(), name)
        assert unit.settings["EnvironmentFile"] == [str(tmp_path / "portal.env")], name
        assert unit.get("Restart") == "on-failure", name
        assert "DJANGO_SETTINGS_MODULE=portal.production" in unit.get("Environment"), name


def test_the_worker_unit_stops_it_warm(tmp_path):
    """SIGTERM to the main process only: Celery's warm shutdown lets the running task
    finish (tests/deploy/test_worker_stop.py shows it), with time to do so."""
    path = read_units(tmp_path)["private-exchange-worker.service"]
    unit = Unit(path.read_text(), path.name)
    assert (unit.get("KillSignal"), unit.get("KillMode")) == ("SIGTERM", "mixed")
    assert unit.stop_timeout() >= 60


def test_the_readme_deploys_with_these_files():
    """The commands of the README's "Deploying" section name files that exist, and enable
    every unit of deploy/systemd/."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploying", 1)[1].split("\n## ", 1)[0]
    commands = "\n".join(re.findall(r"```sh\n(.*?)```", section, re.S))
    named = set(re.findall(r"\bdeploy/[\w./*-]+", commands))
    assert {"deploy/manage", "deploy/portal.env.example"} <= named
    for pattern in named:
        assert list(ROOT.glob(pattern)), f"the README names {pattern}, which is not there"
    enabled = re.search(r"systemctl enable --now (.+)", commands).group(1).split()
    assert sorted(f"{unit}.service" for unit in enabled) == sorted(UNITS)
