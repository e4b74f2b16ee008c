"""``manage.py check`` reports wrong certificate settings before the first order needs them."""

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
    return errors
