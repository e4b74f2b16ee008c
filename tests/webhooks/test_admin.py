import pytest
from django.contrib.auth import get_user_model

from outbox import owed
from provisioning.services import platform_order
from tests.factories import AccountFactory
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_event_owe

pytestmark = pytest.mark.django_db


def test_operators_see_each_delivery_with_its_last_error_and_resend_it(client, settings):
    settings.ORDER_WEBHOOK_URL = "http://127.0.0.1:9/events"
    operator = get_user_model().objects.create_superuser("operator", "op@hoster.example", "pw")
    client.force_login(operator)
    platform = platform_order(account=AccountFactory(), actor="test")
    event = webhook_event_owe(platform, "platform.failed", reason="CA down")
    owed.give_up(event, "ConnectionError: refused")

    page = client.get("/admin/webhooks/webhookdelivery/").content.decode()
    assert platform.service in page and "ConnectionError: refused" in page
    client.post(
        "/admin/webhooks/webhookdelivery/",
        {"action": "resend", "_selected_action": [event.pk]},
    )
    copy = WebhookDelivery.objects.exclude(pk=event.pk).get()
    assert (copy.event_id, copy.payload, copy.status) == (event.event_id, event.payload, "pending")
