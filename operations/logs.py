"""Log lines for people (text) or for a log pipeline (LOG_FORMAT=json, one object a line).

Every line a task writes after it loaded its platform carries the platform's service and
order number: operations.signals binds them to a context variable when a task loads a
Platform, and PlatformContextFilter copies them onto each record. Beat's sweeps, every few
seconds, would bury the lines people read: QuietPeriodicTasksFilter drops their routine
INFO lines (sending, received, succeeded); their warnings and failures still show.
"""

import contextvars
import logging
from collections.abc import Mapping

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

_platform: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "platform", default=None
)


# True while a task runs: only then does loading a platform bind it.
_in_task: contextvars.ContextVar[bool] = contextvars.ContextVar("in_task", default=False)


def task_begin() -> None:
    _in_task.set(True)
    _platform.set(None)


def task_end() -> None:
    _in_task.set(False)
    _platform.set(None)


def platform_loaded(*, service: str, order_number: int) -> None:
    if _in_task.get():
        _platform.set((service, order_number))


class PlatformContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        bound = _platform.get()
        if bound is not None and not hasattr(record, "service"):
            record.service, record.order_number = bound
        return True


def periodic_task_names() -> set[str]:
    from celery import current_app

    return {entry["task"] for entry in current_app.conf.beat_schedule.values()}


BEAT_SENDING = "Scheduler: Sending due task"


class QuietPeriodicTasksFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from django.conf import settings

        if record.levelno > logging.INFO or settings.LOG_PERIODIC_TASKS:
            return True
        if record.name == "celery.beat" and str(record.msg).startswith(BEAT_SENDING):
            return False
        # The worker's "Task name[id] received" and "... succeeded in" lines pass the
        # task's name in a mapping.
        args = record.args
        return not (isinstance(args, Mapping) and args.get("name") in periodic_task_names())


class TextFormatter(logging.Formatter):
    """`time level logger [service #order] message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        service = getattr(record, "service", None)
        if service is None:
            return super().formatMessage(record)
        tagged = logging.makeLogRecord(record.__dict__)
        tagged.message = f"[{service} #{record.order_number}] {record.message}"
        return super().formatMessage(tagged)


class JsonFormatter(_JsonFormatter):
    """`{"time", "level", "logger", "message", "service", "order_number", ...}`: the fields
    a record carries besides the standard ones (service, order_number) come along."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
