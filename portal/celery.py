"""The Celery application. Tasks are thin: the database says what is owed (outbox rows),
beat sweeps it on a short interval, so a lost message or a broker outage loses nothing."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")

app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    # A worker that lost the broker keeps trying (every 30 s at most) for as long as the
    # outage lasts; Celery's default gives up after 100 tries (about 50 minutes) and exits.
    broker_connection_max_retries=None,
    # A request must not hang on a broker outage: the owed row is already committed
    # and the sweep dispatches it once the broker is back.
    task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
    broker_transport_options={"visibility_timeout": 3600},
)
# Celery's Django fix-up closes the database session before and after every task unless
# this is set (then only every so many tasks): a new PostgreSQL session per task cost more
# than most tasks. The hooks below give tasks the web's rule instead: CONN_MAX_AGE and
# CONN_HEALTH_CHECKS.
app.conf["CELERY_DB_REUSE_MAX"] = 1000

if settings.CELERY_BROKER_URL.startswith("filesystem://"):
    folder = settings.CELERY_BROKER_FOLDER
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    app.conf.broker_transport_options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "store_processed": False,
        "control_folder": str(folder / "control"),
    }

app.conf.beat_schedule = {
    "dispatch-due-jobs": {
        "task": "provisioning.tasks.dispatch_due_jobs",
        "schedule": settings.OUTBOX_SWEEP_INTERVAL,
    },
    "dispatch-due-emails": {
        "task": "notifications.tasks.dispatch_due_emails",
        "schedule": settings.OUTBOX_SWEEP_INTERVAL,
    },
    "dispatch-due-webhooks": {
        "task": "webhooks.tasks.dispatch_due_webhooks",
        "schedule": settings.OUTBOX_SWEEP_INTERVAL,
    },
    "purge-idempotency-keys": {
        "task": "provisioning.tasks.purge_idempotency_keys",
        "schedule": 3600,
    },
    "sweep-certificates": {
        "task": "certificates.tasks.sweep_certificates",
        "schedule": 3600,  # hourly: the certificate's track counts in days
    },
}

app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_unusable_or_old_connections(task=None, **kwargs) -> None:
    """What Django does around each request: drop a broken or expired session, and check
    the kept one before its next use. Not for eager tasks, which run inside the caller's
    transaction."""
    if not getattr(task.request, "is_eager", False):
        close_old_connections()
