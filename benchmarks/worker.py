"""The portal's Celery app plus one no-op task, for `celery -A benchmarks.worker worker`:
the pipeline benchmark measures Celery's own throughput with the very worker that then
runs the orders. The no-op counts itself in Redis so the benchmark can time the batch."""

import os
import time

import redis

from portal.celery import app

COUNTER_URL = os.environ.get("BENCH_COUNTER_URL", "")
_counter = None


@app.task(name="benchmarks.noop")
def noop(total: int) -> None:
    global _counter
    if _counter is None:
        _counter = redis.Redis.from_url(COUNTER_URL)
    now = time.time()
    pipe = _counter.pipeline(transaction=False)
    pipe.set("noop:first", now, nx=True)
    pipe.incr("noop:done")
    _, done = pipe.execute()
    if done >= total:
        _counter.set("noop:last", now)


__all__ = ["app", "noop"]


# The customer's-wait phase of the pipeline benchmark reads, per task, when the worker got
# its message, started and ended it (wall clock), from a file named by BENCH_TASK_TIMELINE.
TIMELINE = os.environ.get("BENCH_TASK_TIMELINE", "")

if TIMELINE:
    import json

    from celery.signals import task_postrun, task_prerun, task_received

    def _note(event: str, task_id: str, name: str, args, **extra) -> None:
        line = {"t": time.time(), "event": event, "id": task_id, "task": name, "args": args}
        line.update(extra)
        with open(TIMELINE, "a") as out:  # one short append per line: lines never mix
            out.write(json.dumps(line, default=str) + "\n")

    @task_received.connect
    def _received(request=None, **kwargs) -> None:
        _note("received", request.id, request.name, list(getattr(request, "args", []) or []))

    @task_prerun.connect
    def _started(task_id=None, task=None, args=None, **kwargs) -> None:
        _note("started", task_id, task.name, list(args or []), pid=os.getpid())

    @task_postrun.connect
    def _ended(task_id=None, task=None, args=None, retval=None, **kwargs) -> None:
        result = retval if isinstance(retval, int | type(None)) else str(retval)
        _note("ended", task_id, task.name, list(args or []), retval=result)
