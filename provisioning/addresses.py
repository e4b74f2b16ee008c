"""The hoster's address pools and the allocation of one IPv4 and one IPv6 per platform.

The unique constraints on Platform.ipv4 / Platform.ipv6 are what guarantee that no address
is given twice; the search below only makes a collision unlikely, and a collision with a
concurrent delivery just moves on to the next free address."""

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

    Starts where the next free address most likely is (after the ones in use), so a
    delivery costs a few queries whatever the number of platforms."""
    model = type(platform)
    in_use = model.objects.filter(**{f"{field}__isnull": False}).count()
    batch: list[str] = []
    for address in pool.candidates(in_use):
        batch.append(address)
        if len(batch) < CANDIDATES_PER_QUERY:
            continue
        if (found := _take_first_free(platform, field, batch)) is not None:
            return found
        batch = []
    if batch and (found := _take_first_free(platform, field, batch)) is not None:
        return found
    raise PoolExhausted(f"No free address left in the {field.upper()} pool")


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
