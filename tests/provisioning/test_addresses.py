"""The addresses a delivery gives: where the search starts, wrap-around, changed pools, and
the cost of finding the start point."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from provisioning.addresses import AddressPool, PoolExhausted, allocate
from provisioning.models import Platform
from provisioning.services import platform_deliver, platform_order
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

# Two usable addresses, then six, then one: network and broadcast addresses left out.
V4_NETWORKS = ["192.0.2.0/30", "198.51.100.8/29", "203.0.113.7/32"]
V4_ADDRESSES = [
    "192.0.2.1",
    "192.0.2.2",
    "198.51.100.9",
    "198.51.100.10",
    "198.51.100.11",
    "198.51.100.12",
    "198.51.100.13",
    "198.51.100.14",
    "203.0.113.7",
]
# Three usable addresses, then one: the subnet-router anycast address (::) left out.
V6_NETWORKS = ["2001:db8:100::/126", "2001:db8:200::/127"]
V6_ADDRESSES = ["2001:db8:100::1", "2001:db8:100::2", "2001:db8:100::3", "2001:db8:200::1"]


def deliver(account) -> Platform:
    platform = platform_order(account=account, actor="test")
    platform_deliver(platform_id=platform.pk)
    platform.refresh_from_db()
    return platform


def free(platform: Platform) -> None:
    """An operator deletes a platform: its addresses go back to the pool."""
    platform.delete()


# AddressPool.index_of


def test_index_of_a_v4_pool_of_several_networks_is_address_at_reversed():
    pool = AddressPool(V4_NETWORKS, version=4)

    assert pool.size == len(V4_ADDRESSES)
    assert [pool.address_at(i) for i in range(pool.size)] == V4_ADDRESSES
    assert [pool.index_of(address) for address in V4_ADDRESSES] == list(range(pool.size))


@pytest.mark.parametrize(
    "address",
    [
        "192.0.2.0",  # network address of the first network
        "192.0.2.3",  # its broadcast address
        "198.51.100.8",  # network address of the second network
        "198.51.100.15",  # its broadcast address
        "192.0.2.4",  # just past the first network
        "203.0.113.8",  # just past the /32
        "10.0.0.1",  # in no network of the pool
        "2001:db8:100::1",  # another IP version
        "not an address",
        "",
    ],
)
def test_index_of_an_address_the_v4_pool_does_not_give_is_none(address):
    assert AddressPool(V4_NETWORKS, version=4).index_of(address) is None


def test_index_of_a_v6_pool_of_several_networks_is_address_at_reversed():
    pool = AddressPool(V6_NETWORKS, version=6)

    assert [pool.address_at(i) for i in range(pool.size)] == V6_ADDRESSES
    assert [pool.index_of(address) for address in V6_ADDRESSES] == [0, 1, 2, 3]
    # Any spelling of the address: the database may give it back uncompressed.
    assert pool.index_of("2001:0db8:0100:0000:0000:0000:0000:0003") == 2
    assert pool.index_of("2001:DB8:200::1") == 3


@pytest.mark.parametrize(
    "address",
    [
        "2001:db8:100::",  # subnet-router anycast of the first network
        "2001:db8:200::",  # and of the second
        "2001:db8:100::4",  # just past the first network
        "2001:db8:300::1",  # in no network of the pool
        "192.0.2.1",  # another IP version
    ],
)
def test_index_of_an_address_the_v6_pool_does_not_give_is_none(address):
    assert AddressPool(V6_NETWORKS, version=6).index_of(address) is None


def test_index_of_in_a_large_v6_pool():
    pool = AddressPool(["2001:db8:100::/64", "2001:db8:200::/64"], version=6)

    assert pool.index_of("2001:db8:100::1") == 0
    assert pool.index_of("2001:db8:100::ffff:ffff:ffff:ffff") == 2**64 - 2
    assert pool.index_of("2001:db8:200::1") == 2**64 - 1
    assert pool.address_at(pool.index_of("2001:db8:200::abcd")) == "2001:db8:200::abcd"


# What the deliveries give


def test_consecutive_deliveries_get_consecutive_addresses_across_networks(settings):
    settings.PLATFORM_IPV4_POOL = V4_NETWORKS
    settings.PLATFORM_IPV6_POOL = V6_NETWORKS
    account = AccountFactory()

    platforms = [deliver(account) for _ in range(4)]

    assert [p.ipv4 for p in platforms] == V4_ADDRESSES[:4]
    assert [p.ipv6 for p in platforms] == V6_ADDRESSES
    assert {p.state for p in platforms} == {"awaiting_setup"}


def test_twelve_deliveries_follow_the_numeric_order_not_the_text_order(settings):
    # As text, 192.0.2.9 sorts after 192.0.2.10: the start point must not depend on it.
    settings.PLATFORM_IPV4_POOL = ["192.0.2.0/28"]
    account = AccountFactory()

    given = [deliver(account).ipv4 for _ in range(12)]

    assert given == [f"192.0.2.{n}" for n in range(1, 13)]


def test_an_address_freed_in_the_middle_is_given_again_once_the_pool_wraps(settings):
    settings.PLATFORM_IPV4_POOL = ["192.0.2.0/29"]  # 192.0.2.1 to 192.0.2.6
    account = AccountFactory()
    platforms = [deliver(account) for _ in range(4)]
    assert [p.ipv4 for p in platforms] == ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]

    free(platforms[1])
    after = [deliver(account).ipv4 for _ in range(3)]

    # The search goes on after the newest address, then wraps around to the freed one.
    assert after == ["192.0.2.5", "192.0.2.6", "192.0.2.2"]
    with pytest.raises(PoolExhausted, match="No free address left in the IPV4 pool"):
        deliver(account)


def test_the_newest_address_freed_is_given_again_at_once(settings):
    settings.PLATFORM_IPV4_POOL = ["192.0.2.0/29"]
    account = AccountFactory()
    *_, newest = (deliver(account) for _ in range(3))

    free(newest)

    # The newest platform holding an address is now the second one.
    assert deliver(account).ipv4 == "192.0.2.3"


def test_a_changed_pool_starts_at_its_beginning(settings):
    settings.PLATFORM_IPV4_POOL = ["192.0.2.0/29"]
    settings.PLATFORM_IPV6_POOL = ["2001:db8:100::/64"]
    account = AccountFactory()
    for _ in range(2):
        deliver(account)

    # The newest address (192.0.2.2) is no longer in the pool.
    settings.PLATFORM_IPV4_POOL = ["198.51.100.0/29"]
    settings.PLATFORM_IPV6_POOL = ["2001:db8:200::/64"]
    given = [deliver(account) for _ in range(2)]

    assert [p.ipv4 for p in given] == ["198.51.100.1", "198.51.100.2"]
    assert [p.ipv6 for p in given] == ["2001:db8:200::1", "2001:db8:200::2"]


def test_a_pool_with_a_network_added_in_front_goes_on_after_the_newest_address(settings):
    settings.PLATFORM_IPV4_POOL = ["192.0.2.0/29"]
    account = AccountFactory()
    for _ in range(2):
        deliver(account)

    settings.PLATFORM_IPV4_POOL = ["198.51.100.0/29", "192.0.2.0/29"]
    given = [deliver(account).ipv4 for _ in range(6)]

    assert given == [f"192.0.2.{n}" for n in (3, 4, 5, 6)] + ["198.51.100.1", "198.51.100.2"]


def test_a_full_pool_is_exhausted_whatever_the_start():
    account = AccountFactory()
    pool = AddressPool(["192.0.2.0/30"], version=4)
    first, second, third = (platform_order(account=account, actor="test") for _ in range(3))

    assert allocate(first, "ipv4", pool) == "192.0.2.1"
    assert allocate(second, "ipv4", pool) == "192.0.2.2"
    with pytest.raises(PoolExhausted):
        allocate(third, "ipv4", pool)
    third.refresh_from_db()
    assert third.ipv4 is None


# The cost of the start point


def addressed_platforms(account, count: int) -> None:
    pool = AddressPool(["10.0.0.0/16"], version=4)
    Platform.objects.bulk_create(
        Platform(
            account=account,
            service=f"pex-{n:05d}",
            order_number=1_000_000 + n,
            ipv4=pool.address_at(n),
        )
        for n in range(count)
    )


def allocation_queries(account) -> list[str]:
    pool = AddressPool(["10.0.0.0/16"], version=4)
    platform = platform_order(account=account, actor="test")
    with CaptureQueriesContext(connection) as captured:
        address = allocate(platform, "ipv4", pool)
    assert address == pool.address_at(Platform.objects.exclude(pk=platform.pk).count())
    return [query["sql"] for query in captured.captured_queries]


def test_the_start_point_is_one_bounded_query_without_count(django_assert_max_num_queries):
    account = AccountFactory()
    addressed_platforms(account, 300)
    pool = AddressPool(["10.0.0.0/16"], version=4)
    platform = platform_order(account=account, actor="test")

    # The start, one batch of candidates, then the update in its savepoint.
    with django_assert_max_num_queries(5) as captured:
        assert allocate(platform, "ipv4", pool) == "10.0.1.45"  # index 300

    start = captured.captured_queries[0]["sql"]
    assert "COUNT(" not in start.upper()
    assert start.upper().endswith("LIMIT 1")
    order_by = start.upper().split("ORDER BY", 1)[1]
    assert '"ID" DESC' in order_by and "IPV4" not in order_by
    assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)


def test_the_allocation_costs_the_same_queries_whatever_the_number_of_platforms():
    account = AccountFactory()
    addressed_platforms(account, 3)
    few = allocation_queries(account)
    Platform.objects.all().delete()
    addressed_platforms(account, 500)
    many = allocation_queries(account)

    assert len(few) == len(many) <= 5
    assert not any("COUNT(" in sql.upper() for sql in few + many)
