"""Writes of the operations app."""

from django.utils import timezone

from operations.models import Heartbeat


def heartbeat_record(*, name: str) -> None:
    """One statement (an upsert), run after every sweep."""
    Heartbeat.objects.bulk_create(
        [Heartbeat(name=name, at=timezone.now())],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=["at"],
    )
