"""Encryption at rest for private keys, and the keys derived from the project's secrets.

FIELD_ENCRYPTION_KEY lists Fernet keys, newest first: the first encrypts, any of them
decrypts, so a new key can be put in front and the stored values re-encrypted at leisure
(`manage.py rotate_encryption_keys`). Without it, one key is derived from SECRET_KEY.
"""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_SALT = b"private-exchange-portal/certificates"


class DecryptionError(Exception):
    """No configured key opens the value: a key was removed before its values were rotated."""


def secret_key_derive(*, secret: str, purpose: str) -> bytes:
    """32 bytes for one purpose, so a leaked derived key reveals neither SECRET_KEY nor the
    keys made for other purposes."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose.encode("ascii")
    ).derive(secret.encode("utf-8"))


def _fernet() -> MultiFernet:
    keys = list(settings.FIELD_ENCRYPTION_KEY) or [
        base64.urlsafe_b64encode(
            secret_key_derive(secret=settings.SECRET_KEY, purpose="field-encryption")
        )
    ]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(data: bytes) -> str:
    return _fernet().encrypt(data).decode("ascii")


def decrypt(token: str) -> bytes:
    try:
        return _fernet().decrypt(token.encode("ascii"))
    except InvalidToken:
        raise DecryptionError("No key in FIELD_ENCRYPTION_KEY decrypts this value.") from None


def reencrypt(token: str) -> str:
    """The same value encrypted with the newest key."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise DecryptionError("No key in FIELD_ENCRYPTION_KEY decrypts this value.") from None
