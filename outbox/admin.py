"""What every app's admin shares. Nothing is registered here."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

from outbox.search import MANY_ROWS, estimated_rows


class ReadOnlyAdminMixin:
    """Shown to operators, never edited by hand: rows change through services only (an
    edit here would skip the event, the zone's serial, the outbox)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class EstimatedCountPaginator(Paginator):
    """Pages without a full COUNT(*) of a large table: PostgreSQL's row estimate stands in
    (the changelist shows "about" that many), and small results are counted exactly."""

    @cached_property
    def count(self) -> int:
        estimate = estimated_rows(self.object_list)
        if estimate is None or estimate < MANY_ROWS:
            return super().count
        return estimate
