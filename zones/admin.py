from django.contrib import admin

from outbox.admin import ReadOnlyAdminMixin
from zones.models import EmbeddedRecord, EmbeddedZone


class EmbeddedRecordInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = EmbeddedRecord
    fields = ["name", "rtype", "ttl", "value"]
    extra = 0


# Shown, not edited: a change made here would not bump the zone's serial.
@admin.register(EmbeddedZone)
class EmbeddedZoneAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "serial", "updated_at"]
    search_fields = ["name"]
    inlines = [EmbeddedRecordInline]


@admin.register(EmbeddedRecord)
class EmbeddedRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "rtype", "ttl", "value", "zone"]
    list_filter = ["rtype"]
    search_fields = ["name", "value", "zone__name"]
