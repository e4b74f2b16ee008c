from django.contrib import admin

from zones.models import EmbeddedRecord, EmbeddedZone


class ReadOnlyMixin:
    """Shown, not edited: a change made here would not bump the zone's serial."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class EmbeddedRecordInline(ReadOnlyMixin, admin.TabularInline):
    model = EmbeddedRecord
    fields = ["name", "rtype", "ttl", "value"]
    extra = 0


@admin.register(EmbeddedZone)
class EmbeddedZoneAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "serial", "updated_at"]
    search_fields = ["name"]
    inlines = [EmbeddedRecordInline]


@admin.register(EmbeddedRecord)
class EmbeddedRecordAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "rtype", "ttl", "value", "zone"]
    list_filter = ["rtype"]
    search_fields = ["name", "value", "zone__name"]
