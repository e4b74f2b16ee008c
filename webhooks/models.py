import uuid

from django.db import models

from outbox.models import OwedWork


class EventType(models.TextChoices):
    """What the billing system is told of (README, API: webhooks)."""

    DELIVERED = "platform.delivered", "Delivered"
    READY = "platform.ready", "Ready"
    FAILED = "platform.failed", "Failed"
    SUSPENDED = "platform.suspended", "Suspended"
    RESUMED = "platform.resumed", "Resumed"
    TERMINATED = "platform.terminated", "Terminated"
    CERTIFICATE_RENEWED = "certificate.renewed", "Certificate renewed"


class WebhookDelivery(OwedWork):
    """One event owed to the receiver. ``event_id`` is the body's ``id``: every attempt and
    every resend of the event carries the same one, for the receiver to drop copies."""

    task_name = "webhooks.tasks.deliver"

    event_id = models.UUIDField(default=uuid.uuid4, editable=False, db_index=True)
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    service = models.CharField(max_length=40, db_index=True)
    url = models.URLField(max_length=500)
    payload = models.JSONField(help_text="The JSON body, as sent.")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    resend_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "due_at"])]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event_type} {self.service} ({self.status})"
