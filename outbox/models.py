"""The owed row every kind of owed work extends (abstract: each kind has its own table)."""

from typing import ClassVar

from django.db import models
from django.utils import timezone


class OwedStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "In progress"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


# Work still owed: waiting for its turn, or held by a worker.
OPEN_STATUSES = (OwedStatus.PENDING, OwedStatus.RUNNING)


class OwedWork(models.Model):
    """One piece of owed work. A concrete model names the Celery task that does it (sent
    by name, so that nothing that owes work imports the task that does it)."""

    task_name: ClassVar[str]

    status = models.CharField(max_length=10, choices=OwedStatus.choices, default=OwedStatus.PENDING)
    due_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
