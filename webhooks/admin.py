from django.contrib import admin, messages

from outbox.admin import ReadOnlyAdminMixin
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_resend


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "event_type",
        "service",
        "status",
        "attempts",
        "response_status",
        "last_error",
    )
    list_filter = ("status", "event_type")
    search_fields = ("service", "=event_id")
    actions = ["resend"]

    @admin.action(description="Send the selected events again (same event id)")
    def resend(self, request, queryset):
        for delivery in queryset:
            webhook_resend(delivery_id=delivery.pk)
        self.message_user(request, f"{queryset.count()} event(s) owed again.", messages.SUCCESS)
