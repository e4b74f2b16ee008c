import uuid

import pytest

from tests.certificates.servers import BindServer, PebbleServer, bind_start, pebble_start


@pytest.fixture(scope="session")
def bind_server(tmp_path_factory) -> BindServer:
    """BIND9 serving one zone, updatable with TSIG (RFC 2136)."""
    server = bind_start(tmp_path_factory.mktemp("named"))
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def pebble_server(tmp_path_factory, bind_server) -> PebbleServer:
    """pebble, resolving the DNS-01 records through the BIND9 above."""
    server = pebble_start(tmp_path_factory.mktemp("pebble"), dns_port=bind_server.port)
    yield server
    server.process.stop()


@pytest.fixture
def acme_settings(settings, pebble_server) -> PebbleServer:
    settings.CA_BACKEND = "acme"
    settings.ACME_DIRECTORY_URL = pebble_server.directory_url
    settings.ACME_CA_BUNDLE = pebble_server.ca_bundle
    settings.ACME_CONTACT_EMAIL = "certificates@portal.example.org"
    return pebble_server


@pytest.fixture
def server_name(bind_server) -> str:
    """A name of its own in the zone: DNS records outlive each test's database."""
    return f"mail-{uuid.uuid4().hex[:10]}.{bind_server.zone}"
