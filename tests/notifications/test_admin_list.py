"""The operators' emails changelist: what its search finds by each field (SQLite and
PostgreSQL), that its filters list fixed values, that its queries do not grow with the
table, and, on PostgreSQL, that its page and search read the indexes of migration 0004
(benchmarks/admin.py measures it with 270,000 emails)."""

import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Email
from tests.helpers import changelist_plans, changelist_queries

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/notifications/email/"
KINDS = ["dcv", "ready", "delivery"]


def _emails(start: int, stop: int) -> None:
    """Emails i (one of KINDS in turn, French for odd i), every searched field distinct."""
    target_type = ContentType.objects.get_for_model(Email)
    Email.objects.bulk_create(
        Email(
            target_type=target_type,
            target_id=i,
            kind=KINDS[i % 3],
            recipient=f"postmaster{i}@shop{i}.example",
            language="fr" if i % 2 else "en",
            subject=f"Your service pex-t{i:06d} is ready",
            body_text="Hello",
            body_html="<p>Hello</p>",
            message_id=f"<m{i:06d}-abc@portal.example>",
            status="done" if i % 4 else "failed",
        )
        for i in range(start, stop)
    )


def _found(client, params: dict) -> set[int]:
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return {int(n) for n in re.findall(r"pex-t(\d{6})", response.content.decode())}


# What the operator types and which emails it finds: a piece of the recipient, the
# subject or the Message-ID, anywhere in it and in any case; every word must be found.
SEARCHES = [
    ("pex-t000012", {12}),  # subject
    ("PEX-T00001", set(range(10, 20))),  # subject, prefix, upper case
    ("postmaster7@", {7}),  # recipient
    ("SHOP13.example", {13}),  # a piece of the recipient, upper case
    ("m000021-abc", {21}),  # Message-ID
    ("<m000003-", {3}),  # Message-ID with its bracket
    ("is ready", set(range(25))),  # a piece in every subject
    ("pex-t00002 shop21.", {21}),  # every word, AND
    ('"service pex-t000009"', {9}),  # a quoted phrase
    ("no-such-thing", set()),
]


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_search_finds_by_each_field(admin_client, query, expected):
    _emails(0, 25)
    assert _found(admin_client, {"q": query}) == expected


FILTERS = [
    ({"kind__exact": "dcv"}, {i for i in range(25) if i % 3 == 0}),
    ({"language__exact": "fr"}, {i for i in range(25) if i % 2}),
    ({"status__exact": "failed"}, {i for i in range(25) if i % 4 == 0}),
    ({"kind__exact": "ready", "language__exact": "en"}, {4, 10, 16, 22}),
    ({"kind__exact": "terminated"}, set()),
]


@pytest.mark.parametrize(("params", "expected"), FILTERS)
def test_filters_find_their_emails(admin_client, params, expected):
    _emails(0, 25)
    assert _found(admin_client, params) == expected


def test_filters_list_every_kind_and_language_without_reading_the_table(admin_client):
    _emails(0, 5)
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(CHANGELIST).content.decode()
    assert not any("DISTINCT" in q["sql"] for q in queries)
    # Every kind with templates, sent or not yet; the languages of the settings.
    for kind in ["dcv", "ready", "delivery", "terminated", "renewal_reminder"]:
        assert f"?kind__exact={kind}" in page
    for language in ["en", "fr"]:
        assert f"?language__exact={language}" in page


@pytest.mark.parametrize(
    "params", [{}, {"kind__exact": "dcv"}, {"q": "pex-t000003"}, {"q": "postmaster"}]
)
def test_queries_do_not_grow_with_the_table(admin_client, params):
    _emails(0, 10)
    changelist_queries(admin_client, CHANGELIST, params)  # content types and the like, cached after
    at_ten = changelist_queries(admin_client, CHANGELIST, params)
    _emails(10, 1000)
    assert changelist_queries(admin_client, CHANGELIST, params) == at_ten <= 6


def _plans(client, params: dict, *, priced_out: tuple[str, ...]) -> list[str]:
    return changelist_plans(
        client, CHANGELIST, params, sql_with='"notifications_email"', priced_out=priced_out
    )


@pytest.mark.postgres
def test_the_page_reads_the_index_of_its_order(admin_client):
    _emails(0, 150)  # two pages: the first is read with a LIMIT
    plans = _plans(admin_client, {}, priced_out=("seqscan", "sort"))
    (page,) = [plan for plan in plans if "Limit" in plan]
    assert "email_created_id_idx" in page and "Sort" not in page, page


@pytest.mark.postgres
@pytest.mark.parametrize("query", ["pex-t000003", "postmaster3@", "m000003-abc"])
def test_the_search_reads_the_trigram_index(admin_client, query):
    _emails(0, 25)
    plans = _plans(admin_client, {"q": query}, priced_out=("seqscan", "indexscan"))
    plans = [plan for plan in plans if "~~" in plan]
    assert plans
    for plan in plans:
        assert "Seq Scan" not in plan and "email_search_trgm" in plan, plan


@pytest.mark.postgres
def test_a_filter_by_kind_reads_its_index(admin_client):
    """A kind rarely sent (a termination) is found without reading every email, for the
    page and its count."""
    _emails(0, 25)
    plans = _plans(admin_client, {"kind__exact": "terminated"}, priced_out=("seqscan", "indexscan"))
    plans = [plan for plan in plans if "kind" in plan]
    assert len(plans) == 2  # the count, the page
    for plan in plans:
        assert "Seq Scan" not in plan and "email_kind_idx" in plan, plan
