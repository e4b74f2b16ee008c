"""Log lines: JSON when asked, the platform named on the lines a task writes after it
loaded the platform (context variables, bound by Celery's and Django's signals), and the
periodic sweeps kept out of the console."""

import io
import json
import logging

import pytest
from celery import shared_task

from operations.logs import (
    JsonFormatter,
    PlatformContextFilter,
    QuietPeriodicTasksFilter,
    TextFormatter,
)
from provisioning.models import Platform

task_logger = logging.getLogger("tests.operations.task")


@shared_task(name="tests.operations.work_on_platform")
def work_on_platform(platform_id: int) -> None:
    task_logger.info("before loading")
    platform = Platform.objects.get(pk=platform_id)
    task_logger.info("working on %s", platform.pk)


@pytest.fixture
def captured():
    """What settings.LOGGING's console handler would print, in JSON, for the task logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(PlatformContextFilter())
    handler.addFilter(QuietPeriodicTasksFilter())
    task_logger.addHandler(handler)
    task_logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    task_logger.removeHandler(handler)


def test_task_lines_carry_the_platform_they_loaded(fleet, captured):
    platform = fleet.platform("configured")
    work_on_platform.delay(platform.pk)
    task_logger.info("after the task")
    before, working, after = captured()
    assert working["message"] == f"working on {platform.pk}"
    assert working["service"] == platform.service
    assert working["order_number"] == platform.order_number
    assert working["level"] == "INFO" and working["logger"] == task_logger.name
    assert "service" not in before  # nothing loaded yet
    assert "service" not in after  # the task is over: nothing leaks to the next lines


def test_outside_tasks_loading_a_platform_binds_nothing(fleet, captured):
    platform = fleet.platform("configured")
    Platform.objects.get(pk=platform.pk)
    task_logger.info("a request's line")
    (line,) = captured()
    assert "service" not in line


def record(name, msg, *args, level=logging.INFO) -> logging.LogRecord:
    return logging.getLogger(name).makeRecord(name, level, __file__, 1, msg, args, None)


def test_sweeps_are_quiet_and_the_rest_is_not():
    quiet = QuietPeriodicTasksFilter()
    sweep = {"name": "provisioning.tasks.dispatch_due_jobs", "id": "1", "runtime": 0.01}
    stage = {"name": "provisioning.tasks.run_job", "id": "2", "runtime": 0.3}
    received = "Task %(name)s[%(id)s] received"
    succeeded = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"
    assert not quiet.filter(record("celery.worker.strategy", received, sweep))
    assert not quiet.filter(record("celery.app.trace", succeeded, sweep))
    assert not quiet.filter(
        record(
            "celery.beat",
            "Scheduler: Sending due task %s (%s)",
            "dispatch-due-jobs",
            "provisioning.tasks.dispatch_due_jobs",
        )
    )
    assert quiet.filter(record("celery.worker.strategy", received, stage))
    assert quiet.filter(record("celery.app.trace", succeeded, stage))
    failed = record("celery.app.trace", "Task %(name)s[%(id)s] raised", sweep, level=40)
    assert quiet.filter(failed)


def test_text_lines_name_the_platform():
    line = record("operations.timeline", "configured (system): %s", "Done.")
    line.service, line.order_number = "pe-12345", 42
    text = TextFormatter().format(line)
    assert text.endswith("INFO operations.timeline [pe-12345 #42] configured (system): Done.")


def test_each_step_of_a_platform_is_logged_once_committed(
    account, caplog, django_capture_on_commit_callbacks
):
    from provisioning.services import platform_order

    caplog.set_level(logging.INFO, logger="operations.timeline")
    with django_capture_on_commit_callbacks(execute=False) as pending:
        platform = platform_order(account=account, actor="api")
    assert not [r for r in caplog.records if r.name == "operations.timeline"]
    for callback in pending:
        callback()
    (step,) = [r for r in caplog.records if r.name == "operations.timeline"]
    assert step.getMessage() == "ordered (api): Ordered by api."
    assert (step.service, step.order_number) == (platform.service, platform.order_number)


def test_sweeps_are_logged_when_asked(settings):
    settings.LOG_PERIODIC_TASKS = True
    sweep = {"name": "provisioning.tasks.dispatch_due_jobs", "id": "1"}
    assert QuietPeriodicTasksFilter().filter(
        record("celery.worker.strategy", "Task %(name)s[%(id)s] received", sweep)
    )
