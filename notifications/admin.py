from django.contrib import admin
from django.utils.html import format_html

from notifications.models import Email
from outbox.admin import ReadOnlyAdminMixin


@admin.register(Email)
class EmailAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "kind", "recipient", "subject", "status", "attempts", "sent_at"]
    list_filter = ["kind", "status", "language"]
    search_fields = ["recipient", "subject", "message_id"]
    show_full_result_count = False
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
