"""The billing system's side of /api/orders/: idempotent orders, the listing, suspension,
resumption and termination."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from provisioning.models import Domain, OrderRequest, Platform, PlatformEvent
from provisioning.services import ordering
from tests.factories import AccountFactory
from tests.helpers import delivered_platform, work_off

pytestmark = pytest.mark.django_db
TOKEN = "order-api-secret-token-of-32-characters"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def api_token(settings):
    settings.ORDER_API_TOKEN = TOKEN


def post(client, path, body=None, **headers):
    return client.post(path, body, content_type="application/json", headers={**AUTH, **headers})


# Idempotency-Key.


def test_the_same_key_and_body_give_the_first_answer_and_one_platform(client, mailbox):
    AccountFactory(nic="xx-11111-ovh")
    first = post(client, "/api/orders/", {"account": "xx-11111-ovh"}, **{"Idempotency-Key": "k1"})
    assert first.status_code == 201
    work_off()  # delivered meanwhile: the replay is still the first answer
    again = post(client, "/api/orders/", {"account": "xx-11111-ovh"}, **{"Idempotency-Key": "k1"})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.json()["state"] == "ordered"
    assert Platform.objects.count() == 1


def test_the_same_key_with_another_body_is_422_and_changes_nothing(client):
    AccountFactory(nic="xx-11111-ovh")
    AccountFactory(nic="xx-22222-ovh")
    post(client, "/api/orders/", {"account": "xx-11111-ovh"}, **{"Idempotency-Key": "k1"})
    response = post(
        client, "/api/orders/", {"account": "xx-22222-ovh"}, **{"Idempotency-Key": "k1"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key"
    assert "another body" in response.json()["error"]
    assert list(Platform.objects.values_list("account__nic", flat=True)) == ["xx-11111-ovh"]
    extra = {"account": "xx-11111-ovh", "plan": "large"}
    assert post(client, "/api/orders/", extra, **{"Idempotency-Key": "k1"}).status_code == 422
    reordered = '{ "account" : "xx-11111-ovh" }'
    assert post(client, "/api/orders/", reordered, **{"Idempotency-Key": "k1"}).status_code == 201


def test_without_a_key_each_request_is_an_order(client):
    AccountFactory(nic="xx-11111-ovh")
    for _ in range(2):
        assert post(client, "/api/orders/", {"account": "xx-11111-ovh"}).status_code == 201
    assert Platform.objects.count() == 2
    assert not OrderRequest.objects.exists()


def test_a_refused_order_does_not_use_up_its_key(client):
    post_unknown = post(client, "/api/orders/", {"account": "xx-1-ovh"}, **{"Idempotency-Key": "k"})
    assert post_unknown.status_code == 400
    AccountFactory(nic="xx-1-ovh")
    assert (
        post(
            client, "/api/orders/", {"account": "xx-1-ovh"}, **{"Idempotency-Key": "k"}
        ).status_code
        == 201
    )


def test_keys_are_forgotten_after_their_time_only():
    account = AccountFactory()
    ordering.platform_order_once(
        account=account, actor="test", key="old", fingerprint="f", answer=lambda p: {}
    )
    ordering.platform_order_once(
        account=account, actor="test", key="new", fingerprint="f", answer=lambda p: {}
    )
    OrderRequest.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    assert ordering.idempotency_keys_purge(older_than=timedelta(hours=24)) == 1
    assert list(OrderRequest.objects.values_list("key", flat=True)) == ["new"]
    assert Platform.objects.count() == 2  # the platforms stay


@pytest.mark.postgres
def test_twenty_requests_at_once_with_one_key_make_one_platform(live_server, settings):
    """Twenty clients of a live, threaded server post the same order with the same key at
    the same moment: one platform, and every one of them gets its answer."""
    AccountFactory(nic="xx-11111-ovh")
    start = threading.Barrier(20)

    def order(_):
        start.wait()
        return requests.post(
            f"{live_server.url}/api/orders/",
            json={"account": "xx-11111-ovh"},
            headers={**AUTH, "Idempotency-Key": "retried-order-7"},
            timeout=60,
        )

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(order, range(20)))
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["service"] for answer in answers}) == 1
    assert Platform.objects.count() == 1
    assert OrderRequest.objects.get().platform == Platform.objects.get()


# The listing.


def test_the_listing_pages_through_every_order_once_in_a_stable_order(client, mailbox):
    account = AccountFactory(nic="xx-11111-ovh")
    other = AccountFactory(nic="xx-22222-ovh")
    mine = [ordering.platform_order(account=account, actor="test") for _ in range(5)]
    ordering.platform_order(account=other, actor="test")
    seen, cursor = [], None
    while True:
        query = {"account": "xx-11111-ovh", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/orders/", query, headers=AUTH)
        assert page.status_code == 200
        seen += [order["service"] for order in page.json()["results"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(p.service for p in mine)
    assert len(seen) == len(set(seen)) == 5


def test_the_listing_filters_by_state_and_change_time(client, mailbox):
    account = AccountFactory()
    old = delivered_platform(account)
    Platform.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=2))
    new = ordering.platform_order(account=account, actor="test")
    since = (timezone.now() - timedelta(days=1)).isoformat()
    page = client.get("/api/orders/", {"updated_since": since}, headers=AUTH).json()
    assert [order["service"] for order in page["results"]] == [new.service]
    page = client.get("/api/orders/", {"state": "awaiting_setup"}, headers=AUTH).json()
    assert [order["service"] for order in page["results"]] == [old.service]


def test_the_listing_costs_the_same_queries_for_any_page(client, django_assert_max_num_queries):
    for account in AccountFactory.create_batch(3):
        for _ in range(20):
            ordering.platform_order(account=account, actor="test")
    for number in range(5):
        platform = delivered_platform(account)
        Platform.objects.filter(pk=platform.pk).update(
            state="ready", domain=f"p{number}.example", server_name=f"mail.p{number}.example"
        )
        Domain.objects.create(
            platform=platform, name=f"d{number}.example", mode="authoritative", ownership_token="t1"
        )
    # The platforms, their domains, the domains' DKIM keys: whatever the page holds.
    with django_assert_max_num_queries(3):
        page = client.get("/api/orders/", {"limit": 65}, headers=AUTH)
    results = page.json()["results"]
    assert len(results) == 65
    assert sum(len(order["domains"]) for order in results) == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"cursor": "forged"}, "cursor"),
        ({"state": "nonsense"}, "state"),
        ({"updated_since": "2026-12-01T12:00:00"}, "updated_since"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_listing_parameters_are_400_naming_them(client, query, field):
    response = client.get("/api/orders/", query, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["field"] == field


# Suspension, resumption, termination.


def test_suspend_then_resume_over_the_api(client, mailbox):
    platform = delivered_platform(AccountFactory())
    url = f"/api/orders/{platform.service}"
    suspended = post(client, f"{url}/suspend", {"reason": "Unpaid invoice 42"})
    assert suspended.status_code == 200
    assert suspended.json()["state"] == "suspended"
    assert suspended.json()["suspension_reason"] == "Unpaid invoice 42"
    assert post(client, f"{url}/suspend").json()["state"] == "suspended"  # a retry
    resumed = post(client, f"{url}/resume")
    assert (resumed.status_code, resumed.json()["state"]) == (200, "awaiting_setup")
    assert resumed.json()["suspension_reason"] is None
    refused = post(client, f"{url}/resume")
    assert refused.status_code == 409
    assert "not suspended" in refused.json()["error"]
    kinds = list(PlatformEvent.objects.filter(platform=platform).values_list("kind", flat=True))
    assert kinds[-2:] == ["suspended", "awaiting_setup"]


def test_terminate_from_any_state_and_twice(client, mailbox):
    platform = ordering.platform_order(account=AccountFactory(), actor="test")
    response = post(client, f"/api/orders/{platform.service}/terminate")
    assert (response.status_code, response.json()["state"]) == (200, "terminated")
    assert post(client, f"/api/orders/{platform.service}/terminate").status_code == 200
    assert post(client, f"/api/orders/{platform.service}/suspend").status_code == 409
    assert post(client, "/api/orders/pex-nothing/terminate").status_code == 404


def test_any_valid_time_zone_offset_is_understood(client):
    """An offset PostgreSQL would refuse (beyond ±15:59) is converted to UTC first."""
    response = client.get(
        "/api/orders/", {"updated_since": "0917-01-13T14:21:40-16:13"}, headers=AUTH
    )
    assert response.status_code == 200


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "index"),
    [({}, "platform_updated_id_idx"), ({"account": "xx-1-ovh"}, "platform_account_updated_idx")],
)
def test_a_page_is_read_from_an_index_in_its_order(client, query, index):
    """At 100,000 platforms a page must not sort the table: the plan walks the index."""
    account = AccountFactory(nic="xx-1-ovh")
    for _ in range(3):
        ordering.platform_order(account=account, actor="test")
    first = client.get("/api/orders/", {**query, "limit": 2}, headers=AUTH).json()
    with CaptureQueriesContext(connection) as queries:
        client.get(
            "/api/orders/", {**query, "limit": 2, "cursor": first["next_cursor"]}, headers=AUTH
        )
    [listing] = [q["sql"] for q in queries.captured_queries if "provisioning_platform" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the planner's choice on a big table
        cursor.execute(f"EXPLAIN {listing}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan
    assert "Sort" not in plan.replace("Sort Key", "")
