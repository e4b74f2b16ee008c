"""Step 1 of the guide, order and delivery: the account, the order, the addresses from the
pools and the delivery email with the setup link."""

import secrets
import string
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from provisioning import addresses, links
from provisioning.errors import Refused
from provisioning.models import Account, JobKind, OrderRequest, Platform, PlatformState, Zone
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


PURGE_BATCH_SIZE = 5000


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


@transaction.atomic
def platform_order_once(
    *, account: Account, actor: str, key: str, fingerprint: str, answer: Callable[[Platform], dict]
) -> tuple[int, dict]:
    """An order under an Idempotency-Key: the first request with the key places it and its
    answer (201, ``answer(platform)``) is kept; a later one with the same body gets that
    answer again, with another body a refusal. The key's row is inserted in the order's
    transaction: on PostgreSQL a concurrent request with the key waits on it until the
    first commits, then finds it, so one key never makes two platforms."""
    try:
        with transaction.atomic():
            kept = OrderRequest.objects.create(key=key, fingerprint=fingerprint)
    except IntegrityError:
        kept = OrderRequest.objects.get(key=key)
        if kept.fingerprint != fingerprint:
            raise Refused(
                "Idempotency-Key",
                "This Idempotency-Key was used with another body: use a new key for a new order.",
            ) from None
        return kept.status_code, kept.response
    platform = platform_order(account=account, actor=actor)
    kept.platform, kept.status_code, kept.response = platform, 201, answer(platform)
    kept.save(update_fields=["platform", "status_code", "response"])
    return kept.status_code, kept.response


def idempotency_keys_purge(*, older_than: timedelta) -> int:
    """Forget the keys of orders placed before `older_than` ago (a bounded batch)."""
    ids = OrderRequest.objects.filter(created_at__lt=timezone.now() - older_than).values_list(
        "pk", flat=True
    )[:PURGE_BATCH_SIZE]
    deleted, _ = OrderRequest.objects.filter(pk__in=list(ids)).delete()
    return deleted


def delivery_email_context(platform: Platform) -> dict:
    return {
        "setup_url": links.setup_link(platform),
        "link_days": settings.SETUP_LINK_MAX_AGE // 86400,
    }


@transaction.atomic
def platform_deliver(*, platform_id: int) -> None:
    """Addresses from the pools, then the delivery email with the setup link."""
    platform = locked(platform_id, account=False)
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
