import uuid

import pytest

from tests.bind import BindServer
from tests.pebble import PebbleServer
from zones.writers import DnsWriter, get_writer


@pytest.fixture
def acme_settings(pebble) -> PebbleServer:
    """pebble (tests/pebble.py), running, with the ACME settings pointing at it."""
    return pebble


@pytest.fixture
def dns_writer(bind: BindServer, settings) -> DnsWriter:
    """The zones app's RFC 2136 writer (TSIG), on the shared BIND9 of tests/bind.py."""
    bind.configure(settings)
    return get_writer()


@pytest.fixture
def server_name(bind_server: BindServer) -> str:
    """A name of its own in the zone: DNS records outlive each test's database."""
    return f"mail-{uuid.uuid4().hex[:10]}.{bind_server.zone}"
