"""A real BIND9 primary for the tests: zones open to RFC 2136 updates signed with a TSIG key.

Import the fixtures into a conftest.py (``from tests.bind import bind, bind_server``) to use
them; ``bind`` gives each test the baseline zone contents and a running server.
"""

import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update
import dns.zone
import pytest

from harness.processes import die_with_parent, free_port, stop_child

NAMED = "/usr/sbin/named"
KEY_NAME = "portal-test"
ALGORITHM = "hmac-sha256"
ZONE = "example.test"
SUB_ZONE = "sub.example.test"
READ_ONLY_ZONE = "readonly.test"  # served, but the key may not update it
START_TIMEOUT = 15.0

# Records each test starts with, as (relative name, TTL, type, value); SOA and NS at the apex
# are written once and never reset.
BASELINE: dict[str, list[tuple[str, int, str, str]]] = {
    ZONE: [
        ("@", 3600, "MX", f"10 mx.{ZONE}."),
        ("@", 3600, "TXT", '"v=spf1 mx -all"'),
        ("www", 3600, "A", "192.0.2.80"),
        ("mx", 3600, "A", "192.0.2.25"),
        ("ns", 3600, "A", "127.0.0.1"),
    ],
    SUB_ZONE: [
        ("www", 3600, "A", "192.0.2.81"),
    ],
    READ_ONLY_ZONE: [
        ("www", 3600, "A", "192.0.2.82"),
    ],
}
UPDATABLE_ZONES = (ZONE, SUB_ZONE)


@dataclass
class BindServer:
    """A named process serving the BASELINE zones on 127.0.0.1:port from a temporary directory."""

    directory: Path
    port: int
    key_secret: str
    host: str = "127.0.0.1"
    zone: str = ZONE
    sub_zone: str = SUB_ZONE
    read_only_zone: str = READ_ONLY_ZONE
    key_name: str = KEY_NAME
    key_algorithm: str = ALGORITHM
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.key_name, self.key_secret, self.key_algorithm)

    def configure(self, settings) -> None:
        """Point the portal's DNS settings (pytest-django's ``settings``) at this server."""
        settings.DNS_UPDATE_SERVER = self.address
        settings.DNS_TSIG_KEY_NAME = self.key_name
        settings.DNS_TSIG_ALGORITHM = self.key_algorithm
        settings.DNS_TSIG_SECRET = self.key_secret
        settings.DNS_CHECK_RESOLVERS = [self.address]
        settings.DNS_TIMEOUT = 2.0

    # The process.

    def start(self) -> None:
        with (self.directory / "named.log").open("ab") as log:
            self.process = subprocess.Popen(
                [NAMED, "-g", "-n", "1", "-c", str(self.directory / "named.conf")],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"named exited at start:\n{self.log_tail()}")
            try:
                self.query(self.zone, "SOA", timeout=0.5)
                return
            except (OSError, dns.exception.DNSException):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"named did not answer within {START_TIMEOUT} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        stop_child(self.process)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def updates_received(self) -> int:
        """How many authorised UPDATE messages named has had this session, changing or not."""
        return (self.directory / "named.log").read_text(errors="replace").count(" approved")

    def log_tail(self, lines: int = 30) -> str:
        path = self.directory / "named.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # What it serves.

    def query(self, name: str, rtype: str, *, timeout: float = 2.0) -> dns.message.Message:
        request = dns.message.make_query(name, rtype)
        return dns.query.tcp(request, self.host, port=self.port, timeout=timeout)

    def served(self, name: str, rtype: str) -> set[str]:
        """The values the server answers for name and type (TXT strings joined, unquoted)."""
        response = self.query(name, rtype)
        rrset = response.get_rrset(
            response.answer,
            dns.name.from_text(name),
            dns.rdataclass.IN,
            dns.rdatatype.from_text(rtype),
        )
        if rrset is None:
            return set()
        if rrset.rdtype == dns.rdatatype.TXT:
            return {b"".join(rdata.strings).decode() for rdata in rrset}
        return {rdata.to_text() for rdata in rrset}

    def ttl(self, name: str, rtype: str) -> int:
        response = self.query(name, rtype)
        return response.answer[0].ttl

    def serial(self, zone: str | None = None) -> int:
        response = self.query(zone or self.zone, "SOA")
        return response.answer[0][0].serial

    def records(self, zone: str | None = None) -> set[tuple[str, str, str]]:
        """Every (relative name, type, value) of the zone, by zone transfer, SOA left out."""
        zone = zone or self.zone
        transfer = dns.query.xfr(self.host, zone, port=self.port, keyring=self.key, timeout=2.0)
        contents = dns.zone.from_xfr(transfer)
        return {
            (name.to_text(), dns.rdatatype.to_text(rdataset.rdtype), rdata.to_text())
            for name, rdataset in contents.iterate_rdatasets()
            if rdataset.rdtype != dns.rdatatype.SOA
            for rdata in rdataset
        }

    # Changes made out of band, as the customer or another tool would.

    def set_records(
        self, name: str, rtype: str, values: Iterable[str], *, ttl: int = 300, zone: str = ""
    ) -> None:
        update = dns.update.UpdateMessage(zone or self.zone, keyring=self.key)
        update.replace(dns.name.from_text(name), ttl, rtype, *values)
        self._send(update)

    def delete_records(self, name: str, rtype: str, *, zone: str = "") -> None:
        update = dns.update.UpdateMessage(zone or self.zone, keyring=self.key)
        update.delete(dns.name.from_text(name), rtype)
        self._send(update)

    def reset(self) -> None:
        """Bring the updatable zones back to their baseline records (SOA and apex NS kept)."""
        for zone in UPDATABLE_ZONES:
            origin = dns.name.from_text(zone)
            update = dns.update.UpdateMessage(origin, keyring=self.key)
            for relative, rtype, _value in self.records(zone):
                if relative == "@" and rtype == "NS":
                    continue
                update.delete(dns.name.from_text(relative, origin), rtype)
            for relative, ttl, rtype, value in BASELINE[zone]:
                update.add(dns.name.from_text(relative, origin), ttl, rtype, value)
            self._send(update)

    def _send(self, update: dns.update.UpdateMessage) -> None:
        response = dns.query.tcp(update, self.host, port=self.port, timeout=2.0)
        if response.rcode() != dns.rcode.NOERROR:
            raise RuntimeError(f"update refused: {dns.rcode.to_text(response.rcode())}")


def _zone_file(zone: str) -> str:
    lines = [
        f"$ORIGIN {zone}.",
        "$TTL 3600",
        f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 900 1209600 300",
        f"@ IN NS ns.{ZONE}.",
    ]
    lines += [f"{name} {ttl} IN {rtype} {value}" for name, ttl, rtype, value in BASELINE[zone]]
    return "\n".join(lines) + "\n"


def _named_conf(directory: Path, port: int, key_clause: str) -> str:
    updates = {zone: f"allow-update {{ key {KEY_NAME}; }};" for zone in UPDATABLE_ZONES}
    zones = "".join(
        f'zone "{zone}" {{ type primary; file "{zone}.zone"; {updates.get(zone, "")} }};\n'
        for zone in BASELINE
    )
    return (
        f"{key_clause}\n"
        "options {\n"
        f'  directory "{directory}";\n'
        f'  pid-file "{directory}/named.pid";\n'
        f'  session-keyfile "{directory}/session.key";\n'
        f'  managed-keys-directory "{directory}";\n'
        f"  listen-on port {port} {{ 127.0.0.1; }};\n"
        "  listen-on-v6 { none; };\n"
        "  recursion no;\n"
        "  dnssec-validation no;\n"
        "  notify no;\n"
        f"  allow-transfer {{ key {KEY_NAME}; }};\n"
        "};\n"
        "controls { };\n" + zones
    )


def _make_key() -> tuple[str, str]:
    """A fresh key from tsig-keygen: the named.conf clause and its base64 secret."""
    clause = subprocess.run(
        ["tsig-keygen", "-a", ALGORITHM, KEY_NAME], check=True, capture_output=True, text=True
    ).stdout
    secret = re.search(r'secret "([^"]+)"', clause).group(1)
    return clause, secret


@pytest.fixture(scope="session")
def bind_server() -> Iterator[BindServer]:
    """One named for the whole session, stopped at teardown whatever happened."""
    with tempfile.TemporaryDirectory(prefix="portal-bind-") as tmp:
        directory = Path(tmp)
        port = free_port()
        key_clause, secret = _make_key()
        (directory / "named.conf").write_text(_named_conf(directory, port, key_clause))
        for zone in BASELINE:
            (directory / f"{zone}.zone").write_text(_zone_file(zone))
        server = BindServer(directory=directory, port=port, key_secret=secret)
        try:
            server.start()
            yield server
        finally:
            server.stop()


@pytest.fixture
def bind(bind_server: BindServer) -> BindServer:
    """The session's named, running, with the baseline records (the ones a test changed reset)."""
    if not bind_server.running:
        bind_server.start()
    bind_server.reset()
    return bind_server
