"""Orders made before the certificate's history existed keep what they were."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("certificates", "0001_initial")]
AFTER = [("certificates", "0002_certificate_history")]


@pytest.fixture
def migrated_back():
    """The database at BEFORE; every app's latest migration again afterwards (going back
    also undid the migrations of other apps that depend on AFTER)."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield executor
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_existing_orders_get_their_method_and_validation_time(migrated_back):
    executor = migrated_back
    old = executor.loader.project_state(BEFORE).apps.get_model("certificates", "CertificateOrder")
    issued_at = timezone.now()
    common = {"validation_email": "admin@example.com", "key_type": "rsa2048"}
    email = old.objects.create(
        server_name="a.example.com",
        order_number=1,
        backend="internal",
        status="issued",
        issued_at=issued_at,
        **common,
    )
    acme = old.objects.create(
        server_name="b.example.com", order_number=2, backend="acme", status="pending", **common
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    new = executor.loader.project_state(AFTER).apps.get_model("certificates", "CertificateOrder")
    email, acme = new.objects.get(pk=email.pk), new.objects.get(pk=acme.pk)
    assert (email.method, email.status, email.validated_at) == ("email", "issued", issued_at)
    assert (acme.method, acme.status, acme.validated_at) == ("acme", "pending", None)
    assert email.renewal_of_id is None and email.key_destroyed_at is None


# Migration 0004: the changelist's search indexes (the trigram one on PostgreSQL only),
# undone by going back.
NUMBER_INDEX, SEARCH_INDEX = "certificate_order_number_idx", "certificate_search_trgm"


def _order_indexes() -> set[str]:
    with connection.cursor() as cursor:
        names = connection.introspection.get_constraints(cursor, "certificates_certificateorder")
    return {name for name in (NUMBER_INDEX, SEARCH_INDEX) if name in names}


@pytest.mark.django_db(transaction=True)
def test_changelist_indexes_come_and_go(on_postgres):
    built = {NUMBER_INDEX, SEARCH_INDEX} if on_postgres else {NUMBER_INDEX}
    assert _order_indexes() == built
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("certificates", "0003_metrics_indexes")])
        assert _order_indexes() == set()
        executor = MigrationExecutor(connection)
        executor.migrate([("certificates", "0004_certificate_admin_indexes")])
        assert _order_indexes() == built
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
