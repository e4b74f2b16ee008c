"""Encryption at rest for every app (private keys, DNS validation values, the secrets of
queued emails), and the keys derived from the project's secrets.

FIELD_ENCRYPTION_KEY lists Fernet keys, newest first: the first encrypts, any of them
decrypts, so a new key can be put in front and the stored values re-encrypted at leisure
(`manage.py rotate_encryption_keys`). Without it, one key is derived from SECRET_KEY.

A model names its columns holding Fernet tokens in ``encrypted_fields``; the rotation reads
that list on every installed model, so a new encrypted column is rotated by declaring it.
"""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.apps import apps
from django.conf import settings
from django.db import transaction

# Unchanged since the certificates layer introduced it: the keys derived from SECRET_KEY
# (field encryption, DCV code HMAC) must stay the same for what is already stored.
_SALT = b"private-exchange-portal/certificates"
ROTATION_BATCH_SIZE = 200


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


def encrypted_columns() -> list[tuple[type, str]]:
    """Every (model, column) holding a Fernet token, as the models declare them."""
    return [
        (model, field)
        for model in apps.get_models()
        for field in getattr(model, "encrypted_fields", ())
    ]


def encryption_keys_rotate() -> int:
    """Re-encrypt every stored encrypted value with the newest FIELD_ENCRYPTION_KEY; returns
    how many values. Run it after putting a new key first, before removing the old one."""
    count = 0
    for model, field in encrypted_columns():
        last_pk = 0
        while True:
            with transaction.atomic():
                rows = list(
                    model.objects.select_for_update()
                    .filter(pk__gt=last_pk)
                    .exclude(**{field: ""})  # destroyed keys, values no longer needed
                    .order_by("pk")
                    .only("pk", field)[:ROTATION_BATCH_SIZE]
                )
                for row in rows:
                    setattr(row, field, reencrypt(getattr(row, field)))
                model.objects.bulk_update(rows, [field])
            if not rows:
                break
            count += len(rows)
            last_pk = rows[-1].pk
    return count
