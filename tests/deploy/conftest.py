"""The deployed topology for the tests of this package, as a hoster runs it on a machine:
nginx terminating TLS with a certificate of a test CA, gunicorn with portal.production
behind it, a Celery worker and beat, all started from deploy/'s files (tests/deploy/stack.py),
on PostgreSQL, a Redis of their own, BIND9 and the test SMTP server. Chromium reaches the
portal over https:// and trusts exactly the test's certificate."""

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from harness.processes import free_port
from tests.bind import BindServer
from tests.browser.conftest import (  # noqa: F401 (fixtures used by this package's tests)
    CHROMIUM,
    CHROMIUM_ARGS,
    _orm_beside_playwright,
    artifacts,
    playwright_instance,
    screen,
)
from tests.deploy.stack import (
    DEPLOY,
    Gunicorn,
    Nginx,
    UnitProcess,
    read_environment_file,
    read_unit,
    render,
    unit_replacements,
    write_environment_file,
)
from tests.deploy.tls import Tls, make_tls
from tests.processes import BeatProcess, RedisServer, WorkerProcess, database_url
from tests.processes import use_broker as publish_to

HOST = "127.0.0.1"  # the browser's address; nginx reaches gunicorn from 127.0.0.2
PROXY_ADDRESS = "127.0.0.2"
SECRET_KEY = "deployed-topology-secret-key-" + "x" * 40
ORDER_API_TOKEN = "deployed-topology-order-token-" + "x" * 32
FIELD_ENCRYPTION_KEY = "Fr2s2YqWq7Ujq8QwnX5Yg7N0hJmC5hJ3bK9u1lq0tWs="


@dataclass
class Deployed:
    url: str  # https://127.0.0.1:port, as the emailed links say
    http_port: int
    https_port: int
    tls: Tls
    broker_url: str
    cache_url: str
    directory: Path  # the processes' logs
    web: Gunicorn
    worker: UnitProcess
    beat: UnitProcess
    nginx: Nginx


@pytest.fixture(scope="package")
def tls(tmp_path_factory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"), host=HOST)


@pytest.fixture(scope="package")
def browser(playwright_instance, tls):  # noqa: F811
    """Chromium trusting the test certificate's key, and only it (no ignored TLS errors)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test does)")
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={tls.spki_sha256}"],
    )
    yield browser
    browser.close()


@pytest.fixture(autouse=True)
def fast_password_hashing():
    """Not here: gunicorn checks passwords with the production hashers, so the test's
    users are made with them too."""


def deployment_environment(
    *, deployed_url: str, directory: Path, redis_server: RedisServer, smtp_server, bind_server
) -> dict[str, str]:
    """deploy/portal.env.example with the test's values. Every variable the deployment
    needs is in the example: the test only fills in values, plus a few that speed it up."""
    example = read_environment_file(DEPLOY / "portal.env.example")
    values = {
        "SECRET_KEY": SECRET_KEY,
        "ORDER_API_TOKEN": ORDER_API_TOKEN,
        "FIELD_ENCRYPTION_KEY": FIELD_ENCRYPTION_KEY,
        "ALLOWED_HOSTS": HOST,
        "PORTAL_BASE_URL": deployed_url,
        "PORTAL_VAR_DIR": str(directory / "var"),
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_server.port}/0",
        "CACHE_URL": f"redis://127.0.0.1:{redis_server.port}/1",
        "TRUSTED_PROXIES": PROXY_ADDRESS,
        "EMAIL_HOST": smtp_server.hostname,
        "EMAIL_PORT": str(smtp_server.port),
        "DEFAULT_FROM_EMAIL": example["DEFAULT_FROM_EMAIL"],
    }
    assert values.keys() == example.keys(), "deploy/portal.env.example and the test differ"
    return {
        **values,
        # The DNS primary of the test; a hoster sets these when it uses DNS Assist.
        "DNS_UPDATE_SERVER": bind_server.address,
        "DNS_TSIG_KEY_NAME": bind_server.key_name,
        "DNS_TSIG_ALGORITHM": bind_server.key_algorithm,
        "DNS_TSIG_SECRET": bind_server.key_secret,
        "DNS_CHECK_RESOLVERS": bind_server.address,
        "DNS_TIMEOUT": "2",
        # Sweeps every second rather than every five: a faster test.
        "OUTBOX_SWEEP_INTERVAL": "1",
        "OUTBOX_REDISPATCH_AFTER": "3",
    }


@pytest.fixture(scope="module")
def deployed(
    django_db_setup, tmp_path_factory, tls, smtp_server, bind_server: BindServer
) -> Deployed:
    directory = tmp_path_factory.mktemp("deployed")
    (directory / "var").mkdir()
    https_port, http_port, gunicorn_port = free_port(), free_port(), free_port()
    url = f"https://{HOST}:{https_port}"
    redis_server = RedisServer(port=free_port(), directory=directory)
    redis_server.start()
    env_file = directory / "portal.env"
    write_environment_file(
        env_file,
        deployment_environment(
            deployed_url=url,
            directory=directory,
            redis_server=redis_server,
            smtp_server=smtp_server,
            bind_server=bind_server,
        ),
    )
    replacements = unit_replacements(
        env_file=env_file, state_dir=directory / "var", gunicorn_port=gunicorn_port
    )
    web_unit = read_unit("private-exchange-web.service", replacements)
    site = directory / "private-exchange.conf"
    site.write_text(
        render(
            (DEPLOY / "nginx" / "private-exchange.conf").read_text(),
            {
                "listen 80;": f"listen {HOST}:{http_port};",
                "listen [::]:80;": "# no IPv6 in the test",
                "listen 443 ssl http2;": f"listen {HOST}:{https_port} ssl http2;",
                "listen [::]:443 ssl http2;": "# no IPv6 in the test",
                "server_name portal.example.net;": f"server_name {HOST};",
                "127.0.0.1:8000": f"127.0.0.1:{gunicorn_port}",
                "/etc/private-exchange/tls/fullchain.pem": str(tls.certificate_file),
                "/etc/private-exchange/tls/privkey.pem": str(tls.key_file),
            },
        )
    )
    stack = Deployed(
        url=url,
        http_port=http_port,
        https_port=https_port,
        tls=tls,
        broker_url=f"redis://127.0.0.1:{redis_server.port}/0",
        cache_url=f"redis://127.0.0.1:{redis_server.port}/1",
        directory=directory,
        web=Gunicorn(web_unit, log=directory / "web.log", port=gunicorn_port),
        worker=UnitProcess(
            read_unit("private-exchange-worker.service", replacements),
            log=directory / "worker.log",
            ready=WorkerProcess.ready,
        ),
        beat=UnitProcess(
            read_unit("private-exchange-beat.service", replacements),
            log=directory / "beat.log",
            ready=BeatProcess.ready,
        ),
        nginx=Nginx(directory=directory, site=site, https_port=https_port),
    )
    started = []
    try:
        for process in (stack.web, stack.worker, stack.beat, stack.nginx):
            process.start()
            started.append(process)
        yield stack
    finally:
        # The tests are over: no need to wait for warm shutdowns (tests/deploy/
        # test_worker_stop.py checks the worker's).
        for process in reversed(started):
            process.kill()
        redis_server.stop()


@pytest.fixture
def portal(deployed, transactional_db, bind):
    """The deployed portal, committed rows visible to its processes; the test process
    publishes the tasks it makes owed to the deployment's broker, and clears the rate-limit
    counts of the tests before it."""
    from portal.celery import app

    redis.Redis.from_url(deployed.cache_url).flushdb()
    publish_to(app, deployed.broker_url)
    yield deployed
    publish_to(app, None)
