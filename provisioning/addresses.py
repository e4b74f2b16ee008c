"""The hoster's address pools and the allocation of one IPv4 and one IPv6 per platform.

The unique constraints on Platform.ipv4 / Platform.ipv6 are what guarantee that no address
is given twice; the search below only makes a collision unlikely, and a collision with a
concurrent delivery just moves on to the next free address.

The search starts just after the address of the newest platform (highest primary key) that
holds one, found by a backward scan of the primary key index that stops at the first such
platform (only the newest platforms still waiting for an address come before it): its cost
does not grow with the number of platforms, unlike a COUNT of the addresses in use. The
search walks the pool from there and wraps around at its end, so an address freed behind
the start point is given again once the addresses after the start point are taken."""

import ipaddress
from collections.abc import Iterator

from django.conf import settings
from django.db import IntegrityError, transaction

CANDIDATES_PER_QUERY = 64


class PoolExhausted(Exception):
    pass


class AddressPool:
    def __init__(self, cidrs: list[str], *, version: int) -> None:
        self.networks = [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs]
        if any(network.version != version for network in self.networks):
            raise ValueError(f"Pool {cidrs} must contain only IPv{version} networks")
        # Leave out the network and broadcast addresses of IPv4 networks of /30 and wider.
        self._skip = [1 if version == 4 and n.num_addresses > 2 else 0 for n in self.networks]
        self.sizes = [
            n.num_addresses - 2 * skip if version == 4 else n.num_addresses - 1
            for n, skip in zip(self.networks, self._skip, strict=True)
        ]
        if version == 6:
            self._skip = [1 for _ in self.networks]  # the subnet-router anycast address
        self.size = sum(self.sizes)

    def address_at(self, index: int) -> str:
        for network, size, skip in zip(self.networks, self.sizes, self._skip, strict=True):
            if index < size:
                return str(network[index + skip])
            index -= size
        raise IndexError(index)

    def index_of(self, address: str) -> int | None:
        """The index of `address` in the pool (address_at's inverse), or None when the pool
        does not hold it: another IP version, outside every network of the pool, or one of
        the left-out addresses (network, broadcast, subnet-router anycast)."""
        try:
            wanted = ipaddress.ip_address(str(address).strip())
        except ValueError:
            return None
        base = 0
        for network, size, skip in zip(self.networks, self.sizes, self._skip, strict=True):
            if wanted.version == network.version and wanted in network:
                offset = int(wanted) - int(network.network_address) - skip
                if 0 <= offset < size:
                    return base + offset
            base += size
        return None

    def candidates(self, start: int) -> Iterator[str]:
        """Every address of the pool once, starting at `start` and wrapping around."""
        start %= max(self.size, 1)
        for offset in range(self.size):
            yield self.address_at((start + offset) % self.size)


def ipv4_pool() -> AddressPool:
    return AddressPool(settings.PLATFORM_IPV4_POOL, version=4)


def ipv6_pool() -> AddressPool:
    return AddressPool(settings.PLATFORM_IPV6_POOL, version=6)


def allocate(platform, field: str, pool: AddressPool) -> str:
    """Give the platform a free address of the pool in `field` (ipv4 or ipv6) and save it.

    Starts where the next free address most likely is: just after the address of the newest
    platform holding one (at the pool's beginning when the pool no longer holds that address,
    e.g. it was changed, or when no platform holds one), then tries the pool's addresses in
    order, wrapping around, CANDIDATES_PER_QUERY at a time. Every query is bounded (one index
    probe for the start, one lookup of at most CANDIDATES_PER_QUERY addresses per batch), and
    the first candidate is usually free, so a delivery costs a few queries whatever the number
    of platforms. Raises PoolExhausted when every address of the pool is taken."""
    batch: list[str] = []
    for address in pool.candidates(_start(platform, field, pool)):
        batch.append(address)
        if len(batch) < CANDIDATES_PER_QUERY:
            continue
        if (found := _take_first_free(platform, field, batch)) is not None:
            return found
        batch = []
    if batch and (found := _take_first_free(platform, field, batch)) is not None:
        return found
    raise PoolExhausted(f"No free address left in the {field.upper()} pool")


def _start(platform, field: str, pool: AddressPool) -> int:
    """The pool index after the address of the newest platform (highest primary key) that
    holds one. Ordered by the primary key, never by the address column: on SQLite that is
    text, which sorts 192.0.2.10 before 192.0.2.9."""
    model = type(platform)
    last = (
        model.objects.filter(**{f"{field}__isnull": False})
        .order_by("-pk")
        .values_list(field, flat=True)
        .first()
    )
    index = pool.index_of(last) if last is not None else None
    return 0 if index is None else index + 1


def _take_first_free(platform, field: str, batch: list[str]) -> str | None:
    model = type(platform)
    used = set(model.objects.filter(**{f"{field}__in": batch}).values_list(field, flat=True))
    for address in batch:
        if address in used:
            continue
        try:
            with transaction.atomic():
                model.objects.filter(pk=platform.pk).update(**{field: address})
        except IntegrityError:
            continue  # taken by a concurrent delivery between our read and our write
        setattr(platform, field, address)
        return address
    return None
