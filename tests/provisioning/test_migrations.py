"""Migration 0012 (the search's trigram indexes): built on PostgreSQL, nothing on SQLite,
and undone by going back."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("provisioning", "0011_job_kinds_all")]
AFTER = [("provisioning", "0012_search_trigram_indexes")]
INDEXES = {
    "provisioning_platform": "platform_search_trgm",
    "provisioning_account": "account_search_trgm",
}


def _indexes() -> set[str]:
    with connection.cursor() as cursor:
        return {
            name
            for table, name in INDEXES.items()
            if name in connection.introspection.get_constraints(cursor, table)
        }


@pytest.fixture
def executor():
    """Every app's latest migration again afterwards."""
    yield MigrationExecutor(connection)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_search_indexes_come_and_go(executor, on_postgres):
    assert _indexes() == (set(INDEXES.values()) if on_postgres else set())
    executor.migrate(BEFORE)
    assert _indexes() == set()
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    assert _indexes() == (set(INDEXES.values()) if on_postgres else set())
