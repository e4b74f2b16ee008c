"""A real pebble (ACME test CA) for the tests, checking DNS-01 records through the shared BIND9.

Registered for every test by tests/conftest.py (``pytest_plugins``). ``pebble_servers`` keeps
one pebble per set of options for the session, whose ``-dnsserver`` is tests/bind.py's named;
``pebble`` gives a test the default one running and points the portal's ACME settings
(pytest-django's ``settings``) at it. ``pebble_with(eab_required=..., certificate_validity=...)``
does the same with a pebble of those options: a commercial CA's External Account
Binding (with a key id and MAC key of its own, which it puts in the settings) and short
certificates (seconds). A test may ``stop()`` pebble to play a CA outage; the next test's
fixture starts it again, on the same address. pebble keeps everything in memory: after a
restart it has forgotten its accounts and orders and signs with a new root.
"""

import base64
import contextlib
import datetime
import ipaddress
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
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
EAB_KID = "portal-kid-1"


@dataclass(frozen=True)
class PebbleOptions:
    eab_required: bool = False
    certificate_validity: int | None = None  # seconds; pebble's default is five years


@dataclass
class PebbleServer:
    """A pebble process listening on 127.0.0.1:port, configured in ``directory``."""

    directory: Path
    port: int
    management_port: int
    dns_address: str  # host:port of the DNS server pebble checks DNS-01 records with
    # The MAC key (base64url) of EAB_KID, when pebble requires External Account Binding.
    eab_hmac_key: str = field(default="", repr=False)
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
        settings.ACME_EAB_KID = EAB_KID if self.eab_hmac_key else ""
        settings.ACME_EAB_HMAC_KEY = self.eab_hmac_key

    def certificate_status(self, serial: str) -> dict:
        """What pebble's management interface says of a certificate it issued (upper- or
        lower-case hexadecimal serial): {"Status": "Valid" | "Revoked", "Reason", ...}."""
        response = requests.get(
            f"{self.management_url}/cert-status-by-serial/{serial.lower()}",
            verify=self.ca_bundle,
            timeout=5,
        )
        response.raise_for_status()
        return response.json()

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


def _config(
    directory: Path, port: int, management_port: int, options: PebbleOptions, eab_hmac_key: str
) -> dict:
    config = {
        "listenAddress": f"127.0.0.1:{port}",
        "managementListenAddress": f"127.0.0.1:{management_port}",
        "certificate": str(directory / "cert.pem"),
        "privateKey": str(directory / "key.pem"),
        # HTTP-01 and TLS-ALPN-01 are not used; free ports keep them out of the way.
        "httpPort": free_port(),
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": options.eab_required,
    }
    if options.eab_required:
        config["externalAccountMACKeys"] = {EAB_KID: eab_hmac_key}
    if options.certificate_validity is not None:
        config["certificateValidityPeriod"] = options.certificate_validity
    return {"pebble": config}


def _server_make(directory: Path, dns_address: str, options: PebbleOptions) -> PebbleServer:
    _tls_files(directory)
    port, management_port = free_port(), free_port()
    # 48 random bytes: 64 base64url characters, no padding, as pebble's own examples.
    eab_hmac_key = (
        base64.urlsafe_b64encode(os.urandom(48)).decode("ascii") if options.eab_required else ""
    )
    (directory / "pebble.json").write_text(
        json.dumps(_config(directory, port, management_port, options, eab_hmac_key))
    )
    return PebbleServer(
        directory=directory,
        port=port,
        management_port=management_port,
        dns_address=dns_address,
        eab_hmac_key=eab_hmac_key,
    )


@pytest.fixture(scope="session")
def pebble_servers(bind_server: BindServer) -> Iterator[Callable[[PebbleOptions], PebbleServer]]:
    """The session's pebbles, one per set of options, made on first use, resolving DNS-01
    records through the shared named; all stopped at teardown whatever happened."""
    servers: dict[PebbleOptions, PebbleServer] = {}
    with contextlib.ExitStack() as stack:

        def server_for(options: PebbleOptions) -> PebbleServer:
            if options not in servers:
                directory = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="portal-pebble-"))
                )
                server = _server_make(directory, bind_server.address, options)
                stack.callback(server.stop)
                server.start()
                servers[options] = server
            return servers[options]

        yield server_for


@pytest.fixture
def pebble_with(pebble_servers, bind: BindServer, settings) -> Callable[..., PebbleServer]:
    """pebble_with(eab_required=False, certificate_validity=None): the session's pebble of
    these options, running (started again if a test stopped it), with the session's named
    running too; the portal's ACME settings (EAB included) point at it."""

    def running(**options) -> PebbleServer:
        server = pebble_servers(PebbleOptions(**options))
        if not server.running:
            server.start()
        server.configure(settings)
        return server

    return running


@pytest.fixture
def pebble(pebble_with) -> PebbleServer:
    """The session's default pebble, running, the portal's ACME settings pointing at it."""
    return pebble_with()
