"""Owing webhook events and delivering them."""

import hashlib
import hmac
import json
import logging
import time

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from outbox import owed
from webhooks.models import EventType, WebhookDelivery

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Portal-Signature"


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The X-Portal-Signature value: Stripe's scheme, an HMAC-SHA256 of "{t}.{body}"."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def webhook_event_owe(platform, type: str, **data) -> WebhookDelivery | None:
    """Owe the billing system an event about the platform (anything with ``service`` and
    ``state``), in the caller's transaction; sent after commit. Nothing when no receiver is
    configured."""
    if not settings.ORDER_WEBHOOK_URL:
        return None
    event_type = EventType(type)
    delivery = WebhookDelivery(
        event_type=event_type, service=platform.service, url=settings.ORDER_WEBHOOK_URL
    )
    delivery.payload = {
        "id": str(delivery.event_id),
        "type": event_type.value,
        "service": platform.service,
        "state": platform.state,
        "occurred_at": timezone.now().isoformat(),
        **data,
    }
    return owed.owe(delivery)


@transaction.atomic
def webhook_resend(*, delivery_id: int) -> WebhookDelivery:
    """An operator's resend: the same event (same ``id`` and body) owed again."""
    original = WebhookDelivery.objects.get(pk=delivery_id)
    return owed.owe(
        WebhookDelivery(
            event_id=original.event_id,
            event_type=original.event_type,
            service=original.service,
            url=settings.ORDER_WEBHOOK_URL or original.url,
            payload=original.payload,
            resend_of=original,
        )
    )


def webhook_deliver(*, delivery_id: int) -> None:
    """POST the event, signed. A 2xx is delivered; a timeout, a refused connection or a 5xx
    is tried again with backoff, up to WEBHOOK_MAX_ATTEMPTS; any other answer says the
    receiver will never take it (failed, visible in admin, resendable)."""
    delivery = owed.claim(
        WebhookDelivery, delivery_id, lease_seconds=int(settings.WEBHOOK_TIMEOUT) * 2 + 30
    )
    if delivery is None:
        return  # already delivered, or taken by another worker
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "private-exchange-portal",
        SIGNATURE_HEADER: signature(
            secret=settings.ORDER_WEBHOOK_SECRET, timestamp=int(time.time()), body=body
        ),
    }
    try:
        response = requests.post(
            delivery.url, data=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT
        )
    except requests.RequestException as error:
        _retry(delivery, f"{type(error).__name__}: {error}", status=None)
        return
    if 200 <= response.status_code < 300:
        owed.finish(delivery, response_status=response.status_code, last_error="")
    elif response.status_code >= 500 or response.status_code == 429:
        _retry(delivery, f"HTTP {response.status_code}", status=response.status_code)
    else:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(response_status=response.status_code)
        owed.give_up(delivery, f"HTTP {response.status_code}: the receiver refused the event.")


def _retry(delivery: WebhookDelivery, error: str, *, status: int | None) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(response_status=status)
    if not owed.retry_later(delivery, error, max_attempts=settings.WEBHOOK_MAX_ATTEMPTS):
        logger.warning("Webhook %s to %s given up: %s", delivery.event_id, delivery.url, error)
