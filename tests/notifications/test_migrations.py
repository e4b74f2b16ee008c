"""Emails stored before secrets were masked (issue 10.3): the migration masks them."""

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from outbox.encryption import decrypt

BEFORE = [("notifications", "0002_email_sender")]
AFTER = [("notifications", "0003_email_secrets_masked")]
CODE = "7K2QD-9XH4M-ABCDE-FGHJK-MNPQR"
SETUP = "https://portal.example/setup/eyJzZXJ2aWNlIjoicGV4LWFiYyJ9:1xYNHQ:5mCgNsqvxNq/"
DCV = "https://portal.example/dcv/1234567/eyJzZXJ2aWNlIjoicGV4Iiwib3JkZXIiOjF9:1xY:sig-x_y/"


@pytest.fixture
def migrated_back():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield executor
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_stored_codes_and_link_tokens_are_masked(migrated_back):
    old_apps = migrated_back.loader.project_state(BEFORE).apps
    Email = old_apps.get_model("notifications", "Email")
    target_type = old_apps.get_model("contenttypes", "ContentType").objects.first()
    common = {"target_type_id": target_type.pk, "target_id": 1, "language": "en"}
    unsent_text = f"Open {SETUP} to set it up."
    unsent = Email.objects.create(
        kind="delivery",
        recipient="a@example.com",
        subject="delivery",
        body_text=unsent_text,
        body_html=f'<a href="{SETUP}">{SETUP}</a>',
        message_id="<1@x>",
        status="pending",
        **common,
    )
    sent = Email.objects.create(
        kind="dcv",
        recipient="admin@example.com",
        subject="ORDER #1234567 - Domain Control Validation for mail.example.com",
        body_text=f"Your validation code:\n\n    {CODE}\n\n{DCV}\n",
        body_html=f'<strong>{CODE}</strong> <a href="{DCV}">open</a>',
        message_id="<2@x>",
        status="done",
        **common,
    )
    plain = Email.objects.create(
        kind="ready",
        recipient="a@example.com",
        subject="ready",
        body_text="Ready: https://portal.example/platforms/pex-abc/",
        body_html="<p>Ready</p>",
        message_id="<3@x>",
        status="done",
        **common,
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    Email = executor.loader.project_state(AFTER).apps.get_model("notifications", "Email")
    unsent, sent, plain = (Email.objects.get(pk=e.pk) for e in (unsent, sent, plain))
    mask = "•••••-•••••"
    assert unsent.body_text == f"Open https://portal.example/setup/{mask}/ to set it up."
    assert SETUP not in unsent.body_html and unsent.body_html.count(mask) == 2
    # Not sent yet: it will go out as it was, from the encrypted copy.
    assert json.loads(decrypt(unsent.unmasked_encrypted))["text"] == unsent_text
    assert sent.body_text == (
        f"Your validation code:\n\n    {mask}\n\nhttps://portal.example/dcv/1234567/{mask}/\n"
    )
    assert CODE not in sent.body_html and "sig-x_y" not in sent.body_html
    assert sent.unmasked_encrypted == ""  # sent: nothing live is kept
    assert plain.body_text.endswith("/platforms/pex-abc/") and plain.unmasked_encrypted == ""


# Migration 0004: the changelist's indexes (the trigram one on PostgreSQL only), undone by
# going back.
ORDER_INDEX, KIND_INDEX = "email_created_id_idx", "email_kind_idx"
SEARCH_INDEX = "email_search_trgm"


def _email_indexes() -> set[str]:
    with connection.cursor() as cursor:
        names = connection.introspection.get_constraints(cursor, "notifications_email")
    return {name for name in (ORDER_INDEX, KIND_INDEX, SEARCH_INDEX) if name in names}


@pytest.mark.django_db(transaction=True)
def test_changelist_indexes_come_and_go(on_postgres):
    built = {ORDER_INDEX, KIND_INDEX, SEARCH_INDEX} if on_postgres else {ORDER_INDEX, KIND_INDEX}
    assert _email_indexes() == built
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("notifications", "0003_email_secrets_masked")])
        assert _email_indexes() == set()
        executor = MigrationExecutor(connection)
        executor.migrate([("notifications", "0004_email_admin_indexes")])
        assert _email_indexes() == built
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
