"""Accounts the billing system creates and changes: the account, its login (no usable
password: the customer sets one through an emailed link) and the zones it manages."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from notifications.services import email_queue
from provisioning.errors import Conflict, Refused
from provisioning.models import NIC_VALIDATOR, Account, Zone
from zones.names import InvalidDomainName, normalise_domain


def set_password_url(user) -> str:
    """The emailed link of Django's password-reset tokens: valid until the password is set
    or PASSWORD_RESET_TIMEOUT passes."""
    path = reverse(
        "password-set",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def _email(email: str) -> str:
    try:
        validate_email(email)
    except ValidationError:
        raise Refused("email", "Enter a valid e-mail address.") from None
    return email


def _zone_names(names: list[str]) -> list[str]:
    found = []
    for name in names:
        try:
            found.append(normalise_domain(name))
        except InvalidDomainName as error:
            raise Refused("zones", f"{name[:80]!r}: {error}") from None
    return list(dict.fromkeys(found))


def _zones_set(account: Account, names: list[str]) -> None:
    """The account manages exactly these zones; a zone of another account is refused."""
    taken = Zone.objects.filter(name__in=names).exclude(account=account)
    if other := taken.select_related("account").first():
        raise Conflict("zones", f"The zone {other.name} is managed by another account.")
    account.zones.exclude(name__in=names).delete()
    held = set(account.zones.values_list("name", flat=True))
    try:
        with transaction.atomic():
            Zone.objects.bulk_create(
                [Zone(account=account, name=name) for name in names if name not in held]
            )
    except IntegrityError:  # another account took it meanwhile
        raise Conflict("zones", "One of the zones is managed by another account.") from None


@transaction.atomic
def account_register(*, nic: str, email: str, language: str, zones: list[str]) -> Account:
    """The account, its login and zones; the customer is emailed the link to set a password."""
    nic = nic.strip().lower()
    try:
        NIC_VALIDATOR(nic)
    except ValidationError as error:
        raise Refused("nic", error.messages[0]) from None
    email, names = _email(email), _zone_names(zones)
    if Account.objects.filter(nic=nic).exists():
        raise Conflict("nic", f"An account with NIC handle {nic} exists already.")
    try:
        with transaction.atomic():
            account = Account.objects.create(nic=nic, email=email, language=language)
            user = get_user_model().objects.create_user(username=nic, email=email, password=None)
    except IntegrityError:
        raise Conflict("nic", f"An account or login named {nic} exists already.") from None
    account.users.add(user)
    _zones_set(account, names)
    email_queue(
        target=account,
        kind="set_password",
        recipient=email,
        language=language,
        context={"account": account, "set_password_url": set_password_url(user)},
    )
    return account


@transaction.atomic
def account_update(
    *,
    account: Account,
    email: str | None = None,
    language: str | None = None,
    zones: list[str] | None = None,
) -> Account:
    account = Account.objects.select_for_update().get(pk=account.pk)
    if email is not None:
        account.email = _email(email)
    if language is not None:
        account.language = language
    account.save(update_fields=["email", "language"])
    if zones is not None:
        _zones_set(account, _zone_names(zones))
    return account
