"""Signed, expiring links sent by email. The signature binds the service name (and the
order number for validation links); the pages still require a login of the owning account."""

from django.conf import settings
from django.core import signing
from django.urls import reverse

from notifications.services import Secret

SETUP_SALT = "provisioning.setup-link"
DCV_SALT = "provisioning.dcv-link"


class LinkInvalid(Exception):
    pass


class LinkExpired(Exception):
    pass


def setup_token(platform) -> str:
    return signing.dumps({"service": platform.service}, salt=SETUP_SALT, compress=True)


def setup_link(platform) -> Secret:
    """The setup link as an email carries it: its token is masked in the stored copy."""
    token = setup_token(platform)
    return Secret(settings.PORTAL_BASE_URL + reverse("setup", args=[token]), hidden=token)


def setup_url(platform) -> str:
    return setup_link(platform).value


def status_url(platform) -> str:
    return settings.PORTAL_BASE_URL + reverse("platform", args=[platform.service])


def domains_url(platform) -> str:
    return settings.PORTAL_BASE_URL + reverse("platform-domains", args=[platform.service])


def dcv_token(platform, order_number: int | None = None) -> str:
    """The validation link's token; a renewal's link names the renewal order's number."""
    data = {"service": platform.service, "order": order_number or platform.order_number}
    return signing.dumps(data, salt=DCV_SALT, compress=True)


def dcv_link(platform, order_number: int | None = None) -> Secret:
    """The validation link as the CA's email carries it, its token masked when stored."""
    number = order_number or platform.order_number
    token = dcv_token(platform, number)
    url = settings.PORTAL_BASE_URL + reverse("dcv", args=[number, token])
    return Secret(url, hidden=token)


def _load(token: str, *, salt: str, max_age: int) -> dict:
    try:
        data = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired:
        raise LinkExpired from None
    except signing.BadSignature:
        raise LinkInvalid from None
    if not isinstance(data, dict) or not isinstance(data.get("service"), str):
        raise LinkInvalid
    return data


def service_from_token(token: str) -> str:
    return _load(token, salt=SETUP_SALT, max_age=settings.SETUP_LINK_MAX_AGE)["service"]


def service_from_dcv_token(token: str, *, order_number: int) -> str:
    """The service of a validation link, provided the order number in the URL is the one
    signed: a link whose number was changed is refused."""
    data = _load(token, salt=DCV_SALT, max_age=settings.DCV_CODE_TTL)
    if data.get("order") != order_number:
        raise LinkInvalid
    return data["service"]
