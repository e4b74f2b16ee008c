"""The five steps run by themselves on a real worker and beat (Redis, PostgreSQL, BIND9,
SMTP): the only manual steps are the customer's form and code."""

import re
import time

import pytest
import redis
from django.test import Client

from notifications.models import Email
from provisioning import links
from provisioning.models import Platform
from provisioning.services import platform_order
from tests.conftest import text_body
from tests.factories import AccountFactory
from tests.processes import REDIS_URL, WorkerProcess, portal_env, use_broker

pytestmark = pytest.mark.postgres
FINALISATION_SECONDS = 3


@pytest.fixture
def flow_worker(transactional_db, mailbox, bind, settings, tmp_path):
    """A worker with beat that shares the test's DNS and finalisation settings."""
    from portal.celery import app

    bind.configure(settings)
    settings.FINALISATION_DELAY = FINALISATION_SECONDS
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = portal_env(settings, broker_url=REDIS_URL, var_dir=tmp_path, OUTBOX_SWEEP_INTERVAL="1")
    process = WorkerProcess(env=env, log=tmp_path / "worker.log", beat=True)
    use_broker(app, REDIS_URL)
    process.start()
    yield process
    process.kill()  # the test is over: no need to wait for a warm shutdown
    use_broker(app, None)


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        time.sleep(0.1)
    return value


def test_order_to_ready_with_dns_assist(flow_worker, mailbox, bind):
    account = AccountFactory(nic="xx-80000-ovh", zones=[bind.zone], language="en")
    platform = platform_order(account=account, actor="test")
    mailbox.wait_for(1)
    client = Client()
    client.force_login(account.users.get())
    response = client.post(
        f"/setup/{links.setup_token(platform)}/",
        {
            "service": platform.service,
            "subdomain": "webmail",
            "domain": bind.zone,
            "validation_email": "postmaster",
            "dns_assist": "on",
        },
    )
    assert response.status_code == 302
    submitted = time.monotonic()
    platform.refresh_from_db()
    server_name = f"webmail.{bind.zone}"

    wait_for(lambda: bind.served(server_name, "A") == {platform.ipv4}, what="A record")
    assert bind.served(server_name, "AAAA") == {platform.ipv6}
    assert time.monotonic() - submitted < 10  # served within seconds of the submission
    wait_for(lambda: Platform.objects.get(pk=platform.pk).dns_state == "verified", what="check")

    dcv = wait_for(lambda: mailbox.with_subject("Domain Control Validation"), what="DCV email")
    body = text_body(dcv[0])
    code = re.search(r"^\s{4}(\S+)\s*$", body, re.M).group(1)
    path = re.search(r"https?://[^/\s]+(/dcv/\S+/)", body).group(1)
    assert "The code is valid" in client.post(path, {"code": code}).content.decode()
    assert Platform.objects.get(pk=platform.pk).state == "finalising"
    assert platform.service not in client.get("/").content.decode()

    ready = wait_for(lambda: mailbox.with_subject("is ready!"), what="ready email")
    platform.refresh_from_db()
    assert platform.state == "ready"
    finalising_since = platform.events.get(kind="finalising").created_at
    assert (platform.ready_at - finalising_since).total_seconds() >= FINALISATION_SECONDS
    assert server_name in text_body(ready[0])
    assert platform.service in client.get("/").content.decode()

    time.sleep(2.5)  # more sweeps go by: nothing is sent twice
    assert sorted(Email.objects.values_list("kind", flat=True)) == ["dcv", "delivery", "ready"]
    assert len(mailbox.messages) == 3
