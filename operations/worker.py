"""The worker's own metrics endpoint: each task's outcome and duration.

Tasks run in the worker's pool processes, so their counts are kept in prometheus_client's
multiprocess mode, in a directory private to this worker, and served by an HTTP endpoint
of the worker's main process (WORKER_METRICS_LISTEN). An endpoint of the worker's own,
rather than a directory shared with the web processes: the web and the worker run in
different containers (or hosts) in production, and a scrape target per worker lets
Prometheus see a worker that is gone (`up == 0`), which counts kept by the web could not.
"""

import atexit
import logging
import os
import shutil
import tempfile

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server, values
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

# Seconds: a sweep or a DNS check takes milliseconds, a CA or SMTP exchange seconds.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class TaskMetrics:
    def __init__(self) -> None:
        self.outcomes = Counter(
            "portal_celery_tasks",
            "Tasks the worker finished, by task name and outcome (success, failure, retry).",
            ["task", "outcome"],
            registry=None,
        )
        self.durations = Histogram(
            "portal_celery_task_duration_seconds",
            "Time a task ran in the worker, by task name.",
            ["task"],
            buckets=DURATION_BUCKETS,
            registry=None,
        )

    def observe(self, *, task: str, state: str, seconds: float) -> None:
        self.outcomes.labels(task, state.lower()).inc()
        self.durations.labels(task).observe(seconds)


task_metrics: TaskMetrics | None = None  # set in a worker with an endpoint


def serve(listen: str) -> None:
    """Start the endpoint, in the worker's main process before its pool forks."""
    global task_metrics
    host, _, port = listen.rpartition(":")
    directory = tempfile.mkdtemp(prefix="portal-worker-metrics-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    # The pool processes inherit both: each writes its own files in the directory.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.MultiProcessValue()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    try:
        start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0", registry=registry)  # noqa: S104
    except OSError as error:
        # A worker without its endpoint still works; Prometheus reports the target down.
        logger.error("Worker metrics endpoint not started on %s: %s", listen, error)
        return
    task_metrics = TaskMetrics()
    logger.info("Worker metrics on http://%s/metrics", listen)
