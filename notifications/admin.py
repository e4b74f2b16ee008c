from django.conf import settings
from django.contrib import admin
from django.utils.html import format_html

from notifications.models import Email
from outbox.admin import EstimatedCountPaginator, ReadOnlyAdminMixin


class FixedValuesFilter(admin.SimpleListFilter):
    """A filter whose choices are known without reading the table (Django's own filter of
    a field without choices runs a SELECT DISTINCT over every email to list them)."""

    def values(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return self.values()

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.parameter_name: self.value()})
        return queryset


class KindFilter(FixedValuesFilter):
    title = "kind"
    parameter_name = "kind__exact"  # the URL of Django's own filter

    def values(self):
        # An email is rendered from templates/notifications/<kind>/ (services.render_email):
        # no email has a kind without its directory.
        kinds = settings.BASE_DIR / "templates" / "notifications"
        return [(d.name, d.name) for d in sorted(kinds.iterdir()) if d.is_dir()]


class LanguageFilter(FixedValuesFilter):
    title = "language"
    parameter_name = "language__exact"

    def values(self):
        return [(code, name) for code, name in settings.LANGUAGES]


@admin.register(Email)
class EmailAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "kind", "recipient", "subject", "status", "attempts", "sent_at"]
    list_filter = [KindFilter, "status", LanguageFilter]
    # Django's icontains on each, served on PostgreSQL by the trigram index of migration
    # 0004; the page by the (created_at, id) index of the same migration.
    search_fields = ["recipient", "subject", "message_id"]
    search_help_text = "A piece of the recipient, the subject or the Message-ID."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = [
        "kind",
        "recipient",
        "sender",
        "language",
        "subject",
        "status",
        "attempts",
        "due_at",
        "last_error",
        "sent_at",
        "message_id",
        "resend_of",
        "requested_by",
        "preview",
        "body_text",
    ]
    readonly_fields = fields

    @admin.display(description="Rendered (secrets masked)")
    def preview(self, email):
        # A sandboxed frame: the email's HTML is shown as the recipient sees it, its codes
        # and links' tokens masked (notifications.models), and no script in it can run in
        # the admin's origin.
        return format_html(
            '<iframe sandbox="" srcdoc="{}" title="Email preview" '
            'style="width:100%;min-width:640px;height:480px;border:1px solid #ccc;"></iframe>',
            email.body_html,
        )
