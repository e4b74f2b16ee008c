"""The certificate orders changelist's search indexes.

- `certificate_order_number_idx` on `order_number`: the admin finds an order by its whole
  number, compared as a number (CertificateOrderAdmin.get_search_results). On every
  database (in the model's Meta too).
- `certificate_search_trgm`, a GIN index of the trigrams of UPPER(server_name),
  UPPER(validation_email) and UPPER(serial): the expressions Django's `icontains`
  compares, so that a piece of any of them is found without reading every order
  (pg_trgm). PostgreSQL only. Without GIN's pending list (fastupdate off): entries
  written since the last flush (up to 4 MB) are read by every search, and on a table of
  20 MB at 90,000 orders that made PostgreSQL prefer reading the whole table (100-190 ms
  instead of 20). The cost is on writes: 0.25 ms per UPDATE of an order that changes an
  indexed column (0.03 ms without the index), a few per order.

Built CONCURRENTLY on PostgreSQL (the migration is not atomic) so that orders keep flowing.
Going back drops both and keeps the extension (other objects may use it).
"""

from django.db import migrations, models

NUMBER_INDEX = models.Index(fields=["order_number"], name="certificate_order_number_idx")
SEARCH_INDEX = "certificate_search_trgm"
SEARCHED = ["server_name", "validation_email", "serial"]
TABLE = "certificates_certificateorder"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.add_index(apps.get_model("certificates", "CertificateOrder"), NUMBER_INDEX)
        return
    quote = schema_editor.quote_name
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # An interrupted concurrent build leaves an invalid index of that name behind.
    for name in (NUMBER_INDEX.name, SEARCH_INDEX):
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(name)}")
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY {quote(NUMBER_INDEX.name)} ON {quote(TABLE)} "
        f"({quote('order_number')})"
    )
    expressions = ", ".join(f"UPPER({quote(column)}) gin_trgm_ops" for column in SEARCHED)
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY {quote(SEARCH_INDEX)} ON {quote(TABLE)} USING gin ({expressions}) "
        "WITH (fastupdate = off)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        model = apps.get_model("certificates", "CertificateOrder")
        schema_editor.remove_index(model, NUMBER_INDEX)
        return
    for name in (NUMBER_INDEX.name, SEARCH_INDEX):
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("certificates", "0003_metrics_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="certificateorder", index=NUMBER_INDEX)
            ],
            database_operations=[migrations.RunPython(create, drop, elidable=False)],
        ),
    ]
