"""Readiness: can this process do its work? Each check answers in plain words that carry
no secret (no URL, no password, no exception text)."""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from operations import selectors

# A sweep runs every OUTBOX_SWEEP_INTERVAL (seconds); none for this long means beat or
# every worker is gone.
SWEEP_MAX_AGE = 120
BROKER_TIMEOUT = 2.0

_migrations_applied = False  # once true, true for the life of the process


def check_database() -> str | None:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return "unreachable"
    return None


def check_migrations() -> str | None:
    global _migrations_applied
    if _migrations_applied:
        return None
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception:
        return "unknown (database unreachable)"
    if plan:
        return f"{len(plan)} not applied"
    _migrations_applied = True
    return None


def check_broker() -> str | None:
    from celery import current_app

    try:
        with current_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
    except Exception:
        return "unreachable"
    return None


def check_sweep() -> str | None:
    try:
        beats = selectors.heartbeats()
    except Exception:
        return "unknown (database unreachable)"
    if not beats:
        return "never ran"
    age = (timezone.now() - max(beats.values())).total_seconds()
    if age > SWEEP_MAX_AGE:
        return f"last ran {age:.0f} s ago"
    return None


CHECKS = {
    "database": check_database,
    "migrations": check_migrations,
    "broker": check_broker,
    "sweep": check_sweep,
}


def readiness() -> dict[str, str]:
    """{"database": "ok", "broker": "unreachable", ...}"""
    return {name: check() or "ok" for name, check in CHECKS.items()}
