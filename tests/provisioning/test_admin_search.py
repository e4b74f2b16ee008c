"""The operators' search in the platform changelist: what it finds (SQLite and PostgreSQL),
that its queries do not grow with the table, and, on PostgreSQL, that its plan reads the
trigram indexes of migration 0012 instead of every row (benchmarks/admin.py measures it
with 100,000 platforms)."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from provisioning.admin import PlatformAdmin
from provisioning.models import Account, Platform
from provisioning.selectors import MANY_ROWS, platforms_matching
from tests.helpers import assert_search_reads_indexes

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/provisioning/platform/"


@pytest.fixture
def operator_client(client):
    operator = get_user_model().objects.create_superuser("operator", "op@hoster.example", "pw")
    client.force_login(operator)
    return client


def _platforms(start: int, stop: int) -> list[Platform]:
    """Configured platforms, five per account, every searched field distinct per row."""
    accounts = Account.objects.bulk_create(
        Account(nic=f"zz-{70000 + k}-ovh", email=f"boss-{k}@client{k}.example")
        for k in range(start // 5, (stop + 4) // 5)
    )
    return Platform.objects.bulk_create(
        Platform(
            account=accounts[i // 5 - start // 5],
            service=f"pex-t{i:06d}",
            order_number=3_000_000 + i,
            domain=f"shop{i}.example",
            server_name=f"mail.shop{i}.example",
            validation_email=f"postmaster{i}@shop{i}.example",
        )
        for i in range(start, stop)
    )


def _found(client, query: str) -> set[str]:
    response = client.get(CHANGELIST, {"q": query})
    assert response.status_code == 200
    return set(re.findall(r"pex-t\d{6}", response.content.decode()))


# What the operator types and which platforms it finds: a piece of each searched field,
# anywhere in it and in any case, the whole order number only.
SEARCHES = [
    ("pex-t000012", {"pex-t000012"}),  # service, whole
    ("PEX-T00001", {f"pex-t{i:06d}" for i in range(10, 20)}),  # service, prefix, upper case
    ("zz-70003-ovh", {f"pex-t{i:06d}" for i in range(15, 20)}),  # account's NIC
    ("70003", {f"pex-t{i:06d}" for i in range(15, 20)}),  # a piece of the NIC
    ("shop7.example", {"pex-t000007"}),  # domain (and server name, validation address)
    ("mail.shop13", {"pex-t000013"}),  # server name only
    ("postmaster21@", {"pex-t000021"}),  # validation address only
    ("boss-2@client2.example", {f"pex-t{i:06d}" for i in range(10, 15)}),  # account's e-mail
    ("@CLIENT4.", {f"pex-t{i:06d}" for i in range(20, 25)}),  # a piece of it
    ("3000008", {"pex-t000008"}),  # order number, exactly
    ("300000", set()),  # a piece of an order number is not one
    ("shop1 zz-70002", {f"pex-t{i:06d}" for i in range(10, 15)}),  # every word, AND
    ('"mail.shop9.example"', {"pex-t000009"}),  # a quoted phrase
    ("no-such-thing", set()),
    ("99999999999", set()),  # beyond the column's integers: nothing, no error
]


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_search_finds_by_each_field(operator_client, query, expected):
    _platforms(0, 25)
    assert _found(operator_client, query) == expected


@pytest.mark.parametrize("broad", [False, True])
@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_both_ways_find_the_same(query, expected, broad):
    """Few matches are collected from the indexes, many read newest first: same rows."""
    _platforms(0, 25)
    found = platforms_matching(Platform.objects.all(), query, broad=broad)
    assert set(found.values_list("service", flat=True)) == expected


def test_search_matches_the_admin_fields(operator_client):
    """Every field the admin declares searchable is searched by platforms_matching."""
    _platforms(0, 5)
    platform = Platform.objects.select_related("account").get(service="pex-t000003")
    for field in PlatformAdmin.search_fields:
        value = platform
        for part in field.lstrip("=").split("__"):
            value = getattr(value, part)
        found = platforms_matching(Platform.objects.all(), str(value))
        assert platform in found, field


def _search_queries(client, query: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHANGELIST, {"q": query}).status_code == 200
    return len(queries)


@pytest.mark.parametrize("query", ["pex-t000003", "zz-70000-ovh", "pex-t"])
def test_search_queries_do_not_grow_with_the_table(operator_client, query):
    _platforms(0, 10)
    _search_queries(operator_client, query)  # content types and the like, cached after
    at_ten = _search_queries(operator_client, query)
    _platforms(10, 1000)
    at_thousand = _search_queries(operator_client, query)
    assert at_ten == at_thousand <= 8


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("pex-t000003", {"platform_search_trgm", "account_search_trgm"}),
        ("3000003", {"platform_search_trgm", "account_search_trgm", "order_number_key"}),
    ],
)
def test_search_plan_reads_the_indexes(operator_client, query, indexes):
    """The page's query and its count, as the admin sends them, use the trigram indexes on
    both sides of the join (and the order number's unique index), not a scan of either
    table. Sequential and whole-index scans are priced out so that the plan shows whether
    an index CAN serve each condition: on a few rows the planner would rather read them
    all (at 100,000 it chooses these indexes itself: benchmarks/README.md, 3. Admin)."""
    _platforms(0, 25)
    assert_search_reads_indexes(operator_client, CHANGELIST, query, indexes)


@pytest.mark.postgres
def test_a_search_matching_many_reads_the_newest_first(operator_client):
    """A piece found in every platform: collecting and sorting all matches would read the
    whole table, so the page reads the changelist's index from the newest platform and
    tests each (no UNION), and no COUNT runs (the paginator shows the estimate)."""
    _platforms(0, MANY_ROWS + 2_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE provisioning_platform, provisioning_account")
    with CaptureQueriesContext(connection) as queries:
        response = operator_client.get(CHANGELIST, {"q": "pex-t"})
    page = response.content.decode()
    assert f"pex-t{MANY_ROWS + 1_999:06d}" in page and "pex-t000000" not in page  # newest first
    searched = [q["sql"] for q in queries if "LIKE" in q["sql"] and "EXPLAIN" not in q["sql"]]
    assert len(searched) == 1 and "UNION" not in searched[0]
    assert not any(q["sql"].startswith("SELECT COUNT(*)") for q in queries)
