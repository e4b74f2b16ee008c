"""Trigram indexes for the admin's search (PostgreSQL only; nothing happens on SQLite).

The admin finds a platform by a piece of its service name, domain, server name or
validation address, or of its account's NIC handle or e-mail, in any case: Django writes
that `UPPER(column::text) LIKE UPPER('%piece%')`, which no b-tree index serves. A GIN index
of the trigrams of the same UPPER(column) expressions serves it whatever the piece's
position (pg_trgm). One index per table, one column of it per field: the planner ORs
bitmap scans of the same index.

Built CONCURRENTLY (the migration is not atomic) so that orders keep flowing while it is
built. Going back drops the indexes and keeps the extension: pg_trgm may have been there
before, and other objects may use it.
"""

from django.db import migrations

INDEXES = {
    "platform_search_trgm": (
        "provisioning_platform",
        ["service", "domain", "server_name", "validation_email"],
    ),
    "account_search_trgm": ("provisioning_account", ["nic", "email"]),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, columns) in INDEXES.items():
        # An interrupted concurrent build leaves an invalid index of that name behind.
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(name)}")
        expressions = ", ".join(f"UPPER({quote(column)}) gin_trgm_ops" for column in columns)
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY {quote(name)} ON {quote(table)} USING gin ({expressions})"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("provisioning", "0011_job_kinds_all"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
