"""DKIM key pairs for a mail domain: pure, no database and no settings.

Each domain of a platform has two selectors, ``{platform}-1`` and ``{platform}-2``: one signs,
the other is published and ready, so a rotation switches to it while the first stays in the
DNS for the mail still in transit. The selectors carry the platform's name because a domain
may be on two platforms (one authoritative, one not), each with its own keys.

The private key is handed, in PKCS#8 PEM, to the caller's ``encrypt`` (the project's Fernet,
``outbox.encryption.encrypt``) and only its token is returned: zones does not import
certificates, and the clear key never leaves this function.
"""

import base64
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from zones.mail import dkim_name
from zones.records import InvalidValue

# RFC 8301 3.2: at least 1024 bits, 2048 recommended; a 2048-bit key's record needs two
# TXT strings, which every DNS server handles.
DKIM_KEY_SIZE = 2048
SELECTOR_SUFFIXES = ("1", "2")


@dataclass(frozen=True)
class DkimKey:
    selector: str
    public_key: str  # base64 of the DER SubjectPublicKeyInfo: the record's p= tag
    private_key_encrypted: str  # what encrypt made of the PKCS#8 PEM


def dkim_selectors(*, platform: str) -> tuple[str, str]:
    """The domain's two selectors on that platform; the first is the active one at first."""
    selectors = tuple(f"{platform}-{suffix}" for suffix in SELECTOR_SUFFIXES)
    for selector in selectors:
        dkim_name(selector=selector, domain="example.com")  # refuses a name DNS cannot hold
    return selectors


def dkim_key_generate(*, selector: str, encrypt: Callable[[bytes], str]) -> DkimKey:
    """A new RSA-2048 pair for selector (a rotation makes one for the retired selector)."""
    dkim_name(selector=selector, domain="example.com")
    key = rsa.generate_private_key(public_exponent=65537, key_size=DKIM_KEY_SIZE)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return DkimKey(
        selector=selector,
        public_key=_public_key(key.public_key()),
        private_key_encrypted=encrypt(pem),
    )


def dkim_keys_generate(*, platform: str, encrypt: Callable[[bytes], str]) -> tuple[DkimKey, ...]:
    """Both selectors' pairs for a new domain, the active one first."""
    return tuple(
        dkim_key_generate(selector=selector, encrypt=encrypt)
        for selector in dkim_selectors(platform=platform)
    )


def dkim_public_key(private_key_pem: bytes) -> str:
    """The ``p=`` value of a stored private key (after decrypting it)."""
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except ValueError:
        raise InvalidValue("This is not a PEM private key.") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidValue("A DKIM key of the portal is an RSA key.")
    return _public_key(key.public_key())


def _public_key(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")
