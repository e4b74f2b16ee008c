"""Step 1 of the guide, order and delivery: the account, the order, the addresses from the
pools and the delivery email with the setup link."""

import secrets
import string

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from provisioning import addresses, links
from provisioning.models import Account, JobKind, Platform, PlatformState, Zone
from provisioning.services.common import (
    SYSTEM,
    Stage,
    locked,
    moved,
    owe_job,
    queue_platform_email,
    record,
)
from webhooks.models import EventType
from webhooks.services import webhook_event_owe
from zones.names import normalise_domain


@transaction.atomic
def account_create(
    *, nic: str, email: str, password: str, language: str = "fr", zones: list[str] = ()
) -> Account:
    account = Account(nic=nic, email=email, language=language)
    account.full_clean()
    account.save()
    user = get_user_model().objects.create_user(username=nic, email=email, password=password)
    account.users.add(user)
    for zone in zones:
        Zone.objects.create(account=account, name=normalise_domain(zone))
    return account


def _random_service_name() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "pex-" + "".join(secrets.choice(alphabet) for _ in range(8))


@transaction.atomic
def platform_order(*, account: Account, actor: str) -> Platform:
    """A new platform for the account; its delivery is owed from now on."""
    for _ in range(10):
        platform = Platform(
            account=account,
            service=_random_service_name(),
            order_number=secrets.randbelow(9_000_000) + 1_000_000,
        )
        try:
            with transaction.atomic():
                platform.save()
            break
        except IntegrityError:
            continue  # service name or order number already taken: draw again
    else:
        raise RuntimeError("Could not draw a free service name and order number")
    record(platform, "ordered", actor, f"Ordered by {actor}.")
    owe_job(platform, JobKind.DELIVER)
    return platform


def delivery_email_context(platform: Platform) -> dict:
    return {
        "setup_url": links.setup_url(platform),
        "link_days": settings.SETUP_LINK_MAX_AGE // 86400,
    }


@transaction.atomic
def platform_deliver(*, platform_id: int) -> None:
    """Addresses from the pools, then the delivery email with the setup link."""
    platform = locked(platform_id)
    if platform.state != PlatformState.ORDERED:
        return  # a redelivered task: already done
    if platform.ipv4 is None:
        addresses.allocate(platform, "ipv4", addresses.ipv4_pool())
    if platform.ipv6 is None:
        addresses.allocate(platform, "ipv6", addresses.ipv6_pool())
    platform.deliver()
    moved(platform, SYSTEM, f"Addresses {platform.ipv4} and {platform.ipv6} allocated.")
    queue_platform_email(platform, "delivery", context=delivery_email_context(platform))
    webhook_event_owe(platform, EventType.DELIVERED, ipv4=platform.ipv4, ipv6=platform.ipv6)


JOBS = {JobKind.DELIVER: Stage(platform_deliver)}
EMAILS = {"delivery": delivery_email_context}
