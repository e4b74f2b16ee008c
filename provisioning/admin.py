from django.contrib import admin, messages
from django.contrib.contenttypes.admin import GenericTabularInline
from django.db.models import OuterRef, Subquery
from django_fsm import TransitionNotAllowed

from notifications.models import Email
from provisioning import services
from provisioning.models import Account, Job, Platform, PlatformEvent, Zone


class ReadOnlyInline:
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ZoneInline(admin.TabularInline):
    model = Zone
    extra = 0


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["nic", "email", "language", "created_at"]
    search_fields = ["nic", "email", "zones__name"]
    list_filter = ["language"]
    filter_horizontal = ["users"]
    inlines = [ZoneInline]


class EventInline(ReadOnlyInline, admin.TabularInline):
    model = PlatformEvent
    fields = ["created_at", "kind", "actor", "message"]
    readonly_fields = fields
    verbose_name_plural = "Timeline"


class EmailInline(ReadOnlyInline, GenericTabularInline):
    model = Email
    ct_field = "target_type"
    ct_fk_field = "target_id"
    fields = [
        "created_at",
        "kind",
        "recipient",
        "subject",
        "status",
        "attempts",
        "sent_at",
        "message_id",
        "last_error",
        "requested_by",
    ]
    readonly_fields = fields
    verbose_name_plural = "Emails"


class JobInline(ReadOnlyInline, admin.TabularInline):
    model = Job
    fields = ["kind", "status", "attempts", "due_at", "last_error", "finished_at"]
    readonly_fields = fields


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = [
        "service",
        "account",
        "state",
        "server_name",
        "dns_assist",
        "dns_state",
        "created_at",
        "last_event",
    ]
    list_filter = ["state", "dns_assist", "dns_state"]
    search_fields = [
        "service",
        "account__nic",
        "domain",
        "server_name",
        "validation_email",
        "account__email",
        "=order_number",
    ]
    list_select_related = ["account"]
    show_full_result_count = False
    readonly_fields = [
        "account",
        "service",
        "order_number",
        "state",
        "failed_from",
        "failure_reason",
        "domain",
        "server_name",
        "validation_email",
        "dns_assist",
        "dns_state",
        "ipv4",
        "ipv6",
        "created_at",
        "updated_at",
        "state_changed_at",
        "configured_at",
        "ready_at",
        "due_at",
    ]
    inlines = [EventInline, EmailInline, JobInline]
    actions = ["retry_failed_stage", "cancel_platforms"]

    def get_queryset(self, request):
        latest = PlatformEvent.objects.filter(platform=OuterRef("pk")).order_by(
            "-created_at", "-id"
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_event_kind=Subquery(latest.values("kind")[:1]),
                last_event_at=Subquery(latest.values("created_at")[:1]),
            )
        )

    @admin.display(description="Last event", ordering="last_event_at")
    def last_event(self, platform):
        if not platform.last_event_kind:
            return "—"
        return f"{platform.last_event_kind} ({platform.last_event_at:%Y-%m-%d %H:%M})"

    def has_add_permission(self, request):
        return False  # orders come from the ordering system (API or place_order)

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, service, done: str):
        actor = f"staff:{request.user.get_username()}"
        for platform in queryset:
            try:
                service(platform_id=platform.pk, actor=actor)
            except TransitionNotAllowed:
                self.message_user(
                    request, f"{platform}: not possible in state {platform.state}.", messages.ERROR
                )
            else:
                self.message_user(request, f"{platform}: {done}.", messages.SUCCESS)

    @admin.action(description="Retry the failed stage", permissions=["change"])
    def retry_failed_stage(self, request, queryset):
        self._each(request, queryset, services.platform_retry, "retried")

    @admin.action(description="Cancel", permissions=["change"])
    def cancel_platforms(self, request, queryset):
        self._each(request, queryset, services.platform_cancel, "cancelled")
