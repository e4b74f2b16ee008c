"""Signed, expiring setup links. The signature binds the service name; the view still
requires a login of the owning account."""

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "provisioning.setup-link"


class LinkInvalid(Exception):
    pass


class LinkExpired(Exception):
    pass


def setup_token(platform) -> str:
    return signing.dumps({"service": platform.service}, salt=SALT, compress=True)


def setup_url(platform) -> str:
    return settings.PORTAL_BASE_URL + reverse("setup", args=[setup_token(platform)])


def service_from_token(token: str) -> str:
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.SETUP_LINK_MAX_AGE)
    except signing.SignatureExpired:
        raise LinkExpired from None
    except signing.BadSignature:
        raise LinkInvalid from None
    if not isinstance(data, dict) or not isinstance(data.get("service"), str):
        raise LinkInvalid
    return data["service"]
