"""/healthz and /readyz: JSON, no login, no secret, 200 or 503 with the failing check."""

from datetime import timedelta

import pytest
from celery import current_app

from harness.processes import free_port
from operations.models import Heartbeat
from operations.services import heartbeat_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(settings):
    """The broker /readyz checks: the real Redis of the test run, restored after."""
    from tests.processes import REDIS_URL

    before = current_app.conf.broker_url
    current_app.conf.broker_url = REDIS_URL
    yield current_app.conf
    current_app.conf.broker_url = before


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_once_a_sweep_ran(client, broker):
    not_yet = client.get("/readyz")
    assert not_yet.status_code == 503
    assert not_yet.json()["checks"]["sweep"] == "never ran"
    heartbeat_record(name="provisioning.tasks.dispatch_due_jobs")
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok", "sweep": "ok"},
    }


def test_not_ready_when_the_last_sweep_is_old(client, broker):
    heartbeat_record(name="provisioning.tasks.dispatch_due_jobs")
    Heartbeat.objects.update(at=Heartbeat.objects.get().at - timedelta(minutes=3))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["sweep"].startswith("last ran 1")


def test_not_ready_without_the_broker_and_says_no_secret(client, broker):
    heartbeat_record(name="provisioning.tasks.dispatch_due_jobs")
    broker.broker_url = f"redis://:s3cret-password@127.0.0.1:{free_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "broker": "unreachable",
        "sweep": "ok",
    }
    assert b"s3cret" not in response.content
    assert b"127.0.0.1" not in response.content


def test_not_ready_while_migrations_are_missing(client, broker, monkeypatch):
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    from operations import health

    heartbeat_record(name="provisioning.tasks.dispatch_due_jobs")
    monkeypatch.setattr(health, "_migrations_applied", False)
    MigrationRecorder(connection).migration_qs.filter(app="operations").delete()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "1 not applied"
