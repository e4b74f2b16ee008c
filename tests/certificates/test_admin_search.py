"""The operators' certificate orders changelist: what its search finds by each field
(SQLite and PostgreSQL), that its queries do not grow with the table, and, on PostgreSQL,
that its search reads the indexes of migration 0004 (benchmarks/admin.py measures it with
90,000 orders)."""

import re

import pytest
from django.db import connection

from certificates.models import CertificateOrder
from tests.helpers import assert_search_reads_indexes, changelist_queries

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/certificates/certificateorder/"


def _orders(start: int, stop: int) -> None:
    """Orders i, every searched field distinct."""
    CertificateOrder.objects.bulk_create(
        CertificateOrder(
            server_name=f"mail.shop{i}.example",
            validation_email=f"postmaster{i}@shop{i}.example",
            order_number=3_000_000 + i,
            backend="internal",
            key_type="rsa2048",
            key_encrypted="x",
            csr_pem="x",
            serial=f"{0xABC000 + i:032x}",
        )
        for i in range(start, stop)
    )


def _found(client, query: str) -> set[int]:
    response = client.get(CHANGELIST, {"q": query})
    assert response.status_code == 200
    return {int(n) for n in re.findall(r"mail\.shop(\d+)\.example", response.content.decode())}


SEARCHES = [
    ("mail.shop12.example", {12}),  # server name
    ("MAIL.SHOP1", {1, *range(10, 20)}),  # a piece of it, upper case
    ("postmaster7@", {7}),  # validation address only
    ("3000008", {8}),  # order number, exactly
    ("300000", set()),  # a piece of an order number is not one
    ("03000008", set()),  # nor another way to write it (as Django compared its text)
    ("99999999999", set()),  # beyond the column's integers: nothing, no error
    (f"{0xABC000 + 21:x}", {21}),  # serial, its significant digits
    (f"{0xABC000 + 21:X}", {21}),  # in capitals
    ("shop2 postmaster21", {21}),  # every word, AND
    ("3000005 shop5.", {5}),  # the number and a piece, AND
    ('"shop9.example"', {9}),  # a quoted phrase
    ("no-such-thing", set()),
]


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_search_finds_by_each_field(admin_client, query, expected):
    _orders(0, 25)
    assert _found(admin_client, query) == expected


@pytest.mark.parametrize(
    "params", [{}, {"status__exact": "pending"}, {"q": "mail.shop3."}, {"q": "3000003"}]
)
def test_queries_do_not_grow_with_the_table(admin_client, params):
    _orders(0, 10)
    changelist_queries(admin_client, CHANGELIST, params)  # content types and the like, cached after
    at_ten = changelist_queries(admin_client, CHANGELIST, params)
    _orders(10, 1000)
    assert changelist_queries(admin_client, CHANGELIST, params) == at_ten <= 6


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("mail.shop3.", {"certificate_search_trgm"}),
        ("3000003", {"certificate_search_trgm", "certificate_order_number_idx"}),
    ],
)
def test_search_plan_reads_the_indexes(admin_client, query, indexes):
    """The page's query and its count, as the admin sends them, can be served by the
    trigram index and the order number's (sequential and plain index scans priced out: on
    a few rows the planner would rather read them all)."""
    _orders(0, 25)
    assert_search_reads_indexes(admin_client, CHANGELIST, query, indexes)


@pytest.mark.postgres
def test_the_trigram_index_has_no_pending_list():
    """Entries not yet merged would be read by every search (and a long list makes
    PostgreSQL read the whole table instead): written straight into the index."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'certificate_search_trgm'")
        assert cursor.fetchone()[0] == ["fastupdate=off"]
