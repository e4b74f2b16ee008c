"""What every app's admin shares. Nothing is registered here."""


class ReadOnlyAdminMixin:
    """Shown to operators, never edited by hand: rows change through services only (an
    edit here would skip the event, the zone's serial, the outbox)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
