"""`systemctl stop` of the worker as its unit says (deploy/systemd/): the task under way
when the stop comes is finished, not lost nor done twice, and the worker then ends."""

import asyncio
import threading

import pytest
from aiosmtpd.controller import Controller

from harness.processes import free_port
from notifications.models import Email
from provisioning.services import platform_order
from tests.deploy.conftest import deployment_environment
from tests.deploy.stack import UnitProcess, read_unit, unit_replacements, write_environment_file
from tests.factories import AccountFactory
from tests.processes import RedisServer, WorkerProcess, use_broker

pytestmark = pytest.mark.postgres
SMTP_DELAY = 4.0  # the SMTP server's answer to the message comes this long after it


class SlowMailbox:
    """An SMTP server that takes its time over every message."""

    def __init__(self) -> None:
        self.receiving = threading.Event()
        self.accepted: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.receiving.set()
        await asyncio.sleep(SMTP_DELAY)
        self.accepted.append(envelope.content)
        return "250 OK"


@pytest.fixture
def slow_smtp():
    mailbox = SlowMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


def test_a_stopped_worker_finishes_its_task_first(
    transactional_db, tmp_path, slow_smtp, bind_server
):
    from portal.celery import app

    redis_server = RedisServer(port=free_port(), directory=tmp_path)
    redis_server.start()
    env_file = tmp_path / "portal.env"
    write_environment_file(
        env_file,
        deployment_environment(
            deployed_url="https://127.0.0.1:9",
            directory=tmp_path,
            redis_server=redis_server,
            smtp_server=slow_smtp,
            bind_server=bind_server,
        ),
    )
    (tmp_path / "var").mkdir()
    unit = read_unit(
        "private-exchange-worker.service",
        unit_replacements(env_file=env_file, state_dir=tmp_path / "var", gunicorn_port=8000),
    )
    worker = UnitProcess(unit, log=tmp_path / "worker.log", ready=WorkerProcess.ready)
    try:
        worker.start()
        use_broker(app, f"redis://127.0.0.1:{redis_server.port}/0")
        platform_order(account=AccountFactory(language="en"), actor="billing")
        # The delivery email is on its way: the worker's task is in the SMTP exchange.
        assert slow_smtp.handler.receiving.wait(timeout=60), worker.log_tail()

        status = worker.systemd_stop()

        assert status == 0, worker.log_tail()
        assert b"Warm shutdown" in worker.output()
        assert len(slow_smtp.handler.accepted) == 1
        (email,) = Email.objects.all()
        assert email.sent_at is not None, worker.log_tail()
    finally:
        use_broker(app, None)
        worker.kill()
        redis_server.stop()
