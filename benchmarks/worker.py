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
