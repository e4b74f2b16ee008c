"""A real BIND9 (RFC 2136 + TSIG) and a real pebble (ACME) for the certificate tests.

Minimal on purpose: the zones app's tests/bind.py will replace the BIND part."""

import base64
import ctypes
import datetime
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port

STARTUP_TIMEOUT = 15.0
ZONE = "example.test"
TSIG_KEY_NAME = "portal-test."
TSIG_ALGORITHM = "hmac-sha256"


@dataclass
class Process:
    popen: subprocess.Popen
    log: Path

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def check_running(self, what: str) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{what} exited: {self.log.read_text()[-2000:]}")


def _die_with_parent() -> None:
    # If pytest is killed outright, the kernel ends the server too (PR_SET_PDEATHSIG).
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _start(args: list[str], directory: Path, env: dict | None = None) -> Process:
    log = directory / "output.log"
    with log.open("wb") as output:
        popen = subprocess.Popen(
            args,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env=env,
            preexec_fn=_die_with_parent,
        )
    return Process(popen=popen, log=log)


def _wait(check, process: Process, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        process.check_running(what)
        try:
            if check():
                return
        except (OSError, dns.exception.DNSException, requests.RequestException):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start: {process.log.read_text()[-2000:]}")


@dataclass
class BindServer:
    port: int
    zone: str
    tsig_secret: str
    process: Process

    def _keyring(self) -> dict:
        return dns.tsigkeyring.from_text({TSIG_KEY_NAME: (TSIG_ALGORITHM, self.tsig_secret)})

    def txt(self, name: str) -> list[str]:
        """The TXT strings BIND serves for this name (empty if none)."""
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        response = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=3)
        return [
            b"".join(rdata.strings).decode()
            for rrset in response.answer
            for rdata in rrset
            if rrset.rdtype == dns.rdatatype.TXT
        ]

    def writer(self) -> "TsigTxtWriter":
        return TsigTxtWriter(port=self.port, keyring=self._keyring())


@dataclass
class TsigTxtWriter:
    """A DNS writer as the certificates app expects one, over RFC 2136 with TSIG."""

    port: int
    keyring: dict

    def _send(self, zone: str, build) -> None:
        update = dns.update.UpdateMessage(
            zone, keyring=self.keyring, keyname=TSIG_KEY_NAME, keyalgorithm=TSIG_ALGORITHM
        )
        build(update)
        response = dns.query.tcp(update, "127.0.0.1", port=self.port, timeout=5)
        if response.rcode() != dns.rcode.NOERROR:
            raise RuntimeError(f"DNS update refused: {dns.rcode.to_text(response.rcode())}")

    def set_txt(self, *, zone: str, name: str, value: str, ttl: int) -> None:
        owner = dns.name.from_text(name)
        self._send(zone, lambda update: update.add(owner, ttl, "TXT", f'"{value}"'))

    def delete_txt(self, *, zone: str, name: str, value: str) -> None:
        owner = dns.name.from_text(name)
        self._send(zone, lambda update: update.delete(owner, "TXT", f'"{value}"'))


def bind_start(directory: Path) -> BindServer:
    port = free_port()
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    (directory / f"{ZONE}.zone").write_text(
        f"$TTL 300\n"
        f"@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 300\n"
        f"@ IN NS ns1.{ZONE}.\n"
        f"ns1 IN A 127.0.0.1\n"
    )
    (directory / "named.conf").write_text(
        f"""
options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
}};
controls {{ }};
key "{TSIG_KEY_NAME}" {{ algorithm {TSIG_ALGORITHM}; secret "{secret}"; }};
zone "{ZONE}" {{
    type primary;
    file "{directory}/{ZONE}.zone";
    update-policy {{ grant {TSIG_KEY_NAME} zonesub TXT; }};
}};
"""
    )
    process = _start(["/usr/sbin/named", "-g", "-c", str(directory / "named.conf")], directory)
    server = BindServer(port=port, zone=ZONE, tsig_secret=secret, process=process)

    def answers() -> bool:
        query = dns.message.make_query(ZONE, dns.rdatatype.SOA)
        return bool(dns.query.udp(query, "127.0.0.1", port=port, timeout=1).answer)

    _wait(answers, process, "named")
    return server


@dataclass
class PebbleServer:
    directory_url: str
    ca_bundle: str  # trusts pebble's HTTPS certificate
    management_url: str
    process: Process

    def root_pem(self) -> str:
        """The root pebble signs with (made anew each time pebble starts)."""
        return requests.get(f"{self.management_url}/roots/0", verify=self.ca_bundle, timeout=5).text


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
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
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def pebble_start(directory: Path, *, dns_port: int) -> PebbleServer:
    ca_bundle, cert, key = _tls_files(directory)
    port, management_port = free_port(), free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(cert),
            "privateKey": str(key),
            "httpPort": free_port(),
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (directory / "pebble.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
        "PEBBLE_AUTHZREUSE": "0",
    }
    process = _start(
        [
            "/usr/bin/pebble",
            "-config",
            str(directory / "pebble.json"),
            "-dnsserver",
            f"127.0.0.1:{dns_port}",
        ],
        directory,
        env,
    )
    server = PebbleServer(
        directory_url=f"https://127.0.0.1:{port}/dir",
        ca_bundle=str(ca_bundle),
        management_url=f"https://127.0.0.1:{management_port}",
        process=process,
    )
    _wait(
        lambda: requests.get(server.directory_url, verify=server.ca_bundle, timeout=1).ok,
        process,
        "pebble",
    )
    return server
