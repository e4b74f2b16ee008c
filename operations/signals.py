"""Receivers that watch the other apps without being called by them: task metrics and
sweep heartbeats (Celery signals), the platform a task works on (bound for its log lines
when the task loads it), and each platform's steps written to the log as they commit."""

import logging
import logging.config
import time

from celery.signals import setup_logging, task_postrun, task_prerun, worker_init
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_init, post_save
from django.dispatch import receiver

from operations import logs, services, worker
from provisioning.models import Platform, PlatformEvent

timeline = logging.getLogger("operations.timeline")

_started: dict[str, float] = {}


@setup_logging.connect
def log_as_django_does(**kwargs) -> None:
    """Workers and beat log through settings.LOGGING (LOG_FORMAT, the filters), not
    Celery's own handler."""
    logging.config.dictConfig(settings.LOGGING)


@worker_init.connect
def serve_worker_metrics(**kwargs) -> None:
    if settings.WORKER_METRICS_LISTEN:
        worker.serve(settings.WORKER_METRICS_LISTEN)


@task_prerun.connect
def task_started(task_id=None, **kwargs) -> None:
    logs.task_begin()
    _started[task_id] = time.monotonic()


@task_postrun.connect
def task_finished(task_id=None, task=None, state=None, **kwargs) -> None:
    logs.task_end()
    started = _started.pop(task_id, None)
    if task.request.is_eager:
        return
    if state == "SUCCESS" and task.name in logs.periodic_task_names():
        services.heartbeat_record(name=task.name)
    if worker.task_metrics is not None and started is not None:
        worker.task_metrics.observe(
            task=task.name, state=state or "unknown", seconds=time.monotonic() - started
        )


@receiver(post_init, sender=Platform)
def bind_loaded_platform(sender, instance: Platform, **kwargs) -> None:
    """A task's log lines name the platform it loaded (outside tasks nothing is bound)."""
    service = instance.__dict__.get("service")  # a deferred field must not cost a query
    if service:
        logs.platform_loaded(service=service, order_number=instance.__dict__.get("order_number"))


@receiver(post_save, sender=PlatformEvent)
def log_platform_step(sender, instance: PlatformEvent, created: bool, **kwargs) -> None:
    if not created:
        return
    platform = instance.platform
    line = ("%s (%s): %s", instance.kind, instance.actor, instance.message)
    context = {"service": platform.service, "order_number": platform.order_number}
    transaction.on_commit(lambda: timeline.info(*line, extra=context))
