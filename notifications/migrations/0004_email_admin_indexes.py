"""The emails changelist's indexes: its order, and its search (PostgreSQL only).

- `email_created_id_idx` on `(created_at, id)`, the list's order (Meta.ordering): a page
  reads 100 entries of it instead of sorting every email (their bodies are in the rows).
  On every database (in the model's Meta too).
- `email_kind_idx` on `kind`: the list's filter by kind finds a rare kind's emails (a
  termination, a broken domain) without reading the table, for the page and its count; a
  common kind is read along the order's index. On every database (in Meta too).
- `email_search_trgm`, a GIN index of the trigrams of UPPER(recipient), UPPER(subject) and
  UPPER(message_id): the expressions Django's `icontains` compares, so that a piece of any
  of them is found without reading every row (pg_trgm). PostgreSQL only.

Their cost (benchmarks/README.md, 3. Admin): about 0.1 ms per email INSERT, with GIN's
pending list (fastupdate, the default; 0.45 ms without it). A search also reads the entries
not yet merged (up to 4 MB): 80 ms instead of 20 with half of it full; the table is too
large for PostgreSQL to prefer reading it instead.

An email is written for every order: all three are built CONCURRENTLY (the migration is
not atomic) so that orders keep flowing while they are built. Going back drops them and
keeps the extension (other objects may use it).
"""

from django.db import migrations, models

ORDER_INDEX = models.Index(fields=["created_at", "id"], name="email_created_id_idx")
KIND_INDEX = models.Index(fields=["kind"], name="email_kind_idx")
BTREES = {ORDER_INDEX.name: ["created_at", "id"], KIND_INDEX.name: ["kind"]}
SEARCH_INDEX = "email_search_trgm"
SEARCHED = ["recipient", "subject", "message_id"]
TABLE = "notifications_email"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        for index in (ORDER_INDEX, KIND_INDEX):
            schema_editor.add_index(apps.get_model("notifications", "Email"), index)
        return
    quote = schema_editor.quote_name
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # An interrupted concurrent build leaves an invalid index of that name behind.
    for name in (*BTREES, SEARCH_INDEX):
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(name)}")
    for name, columns in BTREES.items():
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY {quote(name)} ON {quote(TABLE)} "
            f"({', '.join(quote(column) for column in columns)})"
        )
    expressions = ", ".join(f"UPPER({quote(column)}) gin_trgm_ops" for column in SEARCHED)
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY {quote(SEARCH_INDEX)} ON {quote(TABLE)} USING gin ({expressions})"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        for index in (ORDER_INDEX, KIND_INDEX):
            schema_editor.remove_index(apps.get_model("notifications", "Email"), index)
        return
    for name in (*BTREES, SEARCH_INDEX):
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("notifications", "0003_email_secrets_masked"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="email", index=ORDER_INDEX),
                migrations.AddIndex(model_name="email", index=KIND_INDEX),
            ],
            database_operations=[migrations.RunPython(create, drop, elidable=False)],
        ),
    ]
