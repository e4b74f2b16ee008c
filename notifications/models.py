"""The email outbox: every message the portal sends is a row, rendered when queued.

The subject and bodies stored in clear are the copy people read (admin, support): a live
secret in it (a validation code, a link's token) is masked. The message as it is sent,
secrets included, is a Fernet token in `unmasked_encrypted` until it is sent or abandoned,
then emptied: a resend renders anew, with new links and a new code.
"""

from typing import ClassVar

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from outbox.models import OwedWork


class Email(OwedWork):
    """One email to one recipient. `target` is what it is about (a platform); a target
    gets at most one email of each kind, except the copies a person asks for."""

    task_name = "notifications.tasks.send_email"
    encrypted_fields: ClassVar = ("unmasked_encrypted",)

    target_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    target_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("target_type", "target_id")

    kind = models.CharField(max_length=32)
    sender = models.CharField(max_length=255, blank=True, help_text="empty: DEFAULT_FROM_EMAIL")
    recipient = models.EmailField()
    language = models.CharField(max_length=2)
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField()
    unmasked_encrypted = models.TextField(
        blank=True,
        help_text="The message as sent, secrets included, encrypted; empty once sent or "
        "failed, and for a message without secrets (the columns above are sent).",
    )
    message_id = models.CharField("Message-ID", max_length=255, unique=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    resend_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="resends"
    )
    requested_by = models.CharField(max_length=150, blank=True, help_text="who asked a resend")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["target_type", "target_id"]),
            # The admin's list, in this order, and its filter by kind (migration 0004,
            # built concurrently).
            models.Index(fields=["created_at", "id"], name="email_created_id_idx"),
            models.Index(fields=["kind"], name="email_kind_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["target_type", "target_id", "kind"],
                condition=Q(resend_of__isnull=True),
                name="email_one_per_target_and_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient}"
