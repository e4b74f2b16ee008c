"""A real pebble (ACME test CA) for the tests, checking DNS-01 records through the shared BIND9.

Registered for every test by tests/conftest.py (``pytest_plugins``). ``pebble_server`` is one
pebble for the session whose ``-dnsserver`` is tests/bind.py's named; ``pebble`` gives a test
the running server and points the portal's ACME settings (pytest-django's ``settings``) at it.
A test may ``stop()`` pebble to play a CA outage; the next test's ``pebble`` starts it again,
on the same address. pebble keeps everything in memory: after a restart it has forgotten its
accounts and orders and signs with a new root.
"""

import datetime
import ipaddress
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.processes import die_with_parent, free_port, stop_child
from tests.bind import BindServer

PEBBLE = "/usr/bin/pebble"
START_TIMEOUT = 15.0
CONTACT_EMAIL = "certificates@portal.example.org"


@dataclass
class PebbleServer:
    """A pebble process listening on 127.0.0.1:port, configured in ``directory``."""

    directory: Path
    port: int
    management_port: int
    dns_address: str  # host:port of the DNS server pebble checks DNS-01 records with
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def management_url(self) -> str:
        return f"https://127.0.0.1:{self.management_port}"

    @property
    def ca_bundle(self) -> str:
        """The CA file that trusts pebble's own HTTPS certificate."""
        return str(self.directory / "ca.pem")

    def configure(self, settings) -> None:
        """Point the portal's CA settings (pytest-django's ``settings``) at this server."""
        settings.CA_BACKEND = "acme"
        settings.ACME_DIRECTORY_URL = self.directory_url
        settings.ACME_CA_BUNDLE = self.ca_bundle
        settings.ACME_CONTACT_EMAIL = CONTACT_EMAIL

    def root_pem(self) -> str:
        """The root pebble signs with (made anew each time pebble starts)."""
        return requests.get(f"{self.management_url}/roots/0", verify=self.ca_bundle, timeout=5).text

    # The process.

    def start(self) -> None:
        env = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",  # check the challenge at once
            "PEBBLE_WFE_NONCEREJECT": "0",  # no random badNonce
            "PEBBLE_AUTHZREUSE": "0",  # every order is validated anew
        }
        with (self.directory / "pebble.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    PEBBLE,
                    "-config",
                    str(self.directory / "pebble.json"),
                    "-dnsserver",
                    self.dns_address,
                ],
                cwd=self.directory,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pebble exited at start:\n{self.log_tail()}")
            try:
                if requests.get(self.directory_url, verify=self.ca_bundle, timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pebble did not answer within {START_TIMEOUT} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        stop_child(self.process)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        path = self.directory / "pebble.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _tls_files(directory: Path) -> None:
    """A CA and the HTTPS certificate it signs for pebble's listeners (127.0.0.1, localhost)."""
    now = datetime.datetime.now(tz=datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble test TLS CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _config(directory: Path, port: int, management_port: int) -> dict:
    return {
        "pebble": {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(directory / "cert.pem"),
            "privateKey": str(directory / "key.pem"),
            # HTTP-01 and TLS-ALPN-01 are not used; free ports keep them out of the way.
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }


@pytest.fixture(scope="session")
def pebble_server(bind_server: BindServer) -> Iterator[PebbleServer]:
    """One pebble for the whole session, resolving DNS-01 records through the shared named;
    stopped at teardown whatever happened."""
    with tempfile.TemporaryDirectory(prefix="portal-pebble-") as tmp:
        directory = Path(tmp)
        _tls_files(directory)
        port, management_port = free_port(), free_port()
        (directory / "pebble.json").write_text(
            json.dumps(_config(directory, port, management_port))
        )
        server = PebbleServer(
            directory=directory,
            port=port,
            management_port=management_port,
            dns_address=bind_server.address,
        )
        try:
            server.start()
            yield server
        finally:
            server.stop()


@pytest.fixture
def pebble(pebble_server: PebbleServer, bind: BindServer, settings) -> PebbleServer:
    """The session's pebble, running (started again if a test stopped it), with the
    session's named running too; the portal's ACME settings point at it."""
    if not pebble_server.running:
        pebble_server.start()
    pebble_server.configure(settings)
    return pebble_server
