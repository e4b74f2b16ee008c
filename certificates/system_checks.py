"""``manage.py check`` reports wrong certificate settings before the first order needs them."""

import base64
import binascii
from pathlib import Path

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error

from certificates.crypto import KEY_TYPES
from certificates.models import Backend


def certificate_settings(app_configs, **kwargs) -> list[Error]:
    errors = []
    if settings.CA_BACKEND not in Backend.values:
        errors.append(
            Error(
                f"CA_BACKEND is {settings.CA_BACKEND!r}; use one of {', '.join(Backend.values)}.",
                id="certificates.E001",
            )
        )
    if settings.CERT_KEY_TYPE not in KEY_TYPES:
        errors.append(
            Error(
                f"CERT_KEY_TYPE is {settings.CERT_KEY_TYPE!r}; use one of {', '.join(KEY_TYPES)}.",
                id="certificates.E002",
            )
        )
    for position, key in enumerate(settings.FIELD_ENCRYPTION_KEY, start=1):
        try:
            Fernet(key)
        except ValueError:
            # The key itself stays out of the message: it is a secret.
            errors.append(
                Error(
                    f"FIELD_ENCRYPTION_KEY: key {position} is not a Fernet key "
                    "(32 bytes in URL-safe base64, as Fernet.generate_key() makes).",
                    id="certificates.E003",
                )
            )
    if settings.CA_BACKEND == "acme" and not settings.ACME_DIRECTORY_URL:
        errors.append(
            Error("CA_BACKEND is acme but ACME_DIRECTORY_URL is empty.", id="certificates.E004")
        )
    if settings.ACME_CA_BUNDLE and not Path(settings.ACME_CA_BUNDLE).is_file():
        errors.append(
            Error(
                f"ACME_CA_BUNDLE {settings.ACME_CA_BUNDLE} is not a readable file.",
                id="certificates.E005",
            )
        )
    errors += _lifetime_errors()
    if bool(settings.ACME_EAB_KID) != bool(settings.ACME_EAB_HMAC_KEY):
        errors.append(
            Error(
                "ACME_EAB_KID and ACME_EAB_HMAC_KEY go together: set both or neither.",
                id="certificates.E009",
            )
        )
    elif settings.ACME_EAB_HMAC_KEY and not _base64url(settings.ACME_EAB_HMAC_KEY):
        # The key itself stays out of the message: it is a secret.
        errors.append(Error("ACME_EAB_HMAC_KEY is not base64url.", id="certificates.E010"))
    return errors


def _lifetime_errors() -> list[Error]:
    errors = []
    if settings.CERTIFICATE_LIFETIME is not None and settings.CERTIFICATE_LIFETIME <= 0:
        errors.append(
            Error(
                f"CERTIFICATE_LIFETIME is {settings.CERTIFICATE_LIFETIME}; give seconds above 0, "
                "or leave it empty for the longest the Baseline Requirements allow.",
                id="certificates.E006",
            )
        )
    if not 0 < settings.CERTIFICATE_RENEW_BEFORE_PERCENT < 100:
        errors.append(
            Error(
                f"CERTIFICATE_RENEW_BEFORE_PERCENT is {settings.CERTIFICATE_RENEW_BEFORE_PERCENT};"
                " give a percentage between 1 and 99.",
                id="certificates.E007",
            )
        )
    if settings.DCV_REUSE_PERIOD is not None and settings.DCV_REUSE_PERIOD < 0:
        errors.append(
            Error(
                f"DCV_REUSE_PERIOD is {settings.DCV_REUSE_PERIOD}; give seconds (0: never reuse).",
                id="certificates.E008",
            )
        )
    return errors


def _base64url(text: str) -> bool:
    try:
        base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return False
    return all(symbol.isalnum() or symbol in "-_=" for symbol in text)
