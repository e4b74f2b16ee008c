from celery import shared_task

from outbox import owed
from webhooks import services
from webhooks.models import WebhookDelivery


@shared_task(name=WebhookDelivery.task_name)
def deliver(delivery_id: int) -> None:
    services.webhook_deliver(delivery_id=delivery_id)


@shared_task(name="webhooks.tasks.dispatch_due_webhooks")
def dispatch_due_webhooks() -> int:
    return owed.dispatch_due(WebhookDelivery)
