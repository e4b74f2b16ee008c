"""Read-only views for operators. The private keys and the DCV code hashes are left out."""

from django.contrib import admin

from certificates.models import AcmeAccount, CertificateAuthority, CertificateOrder
from outbox.admin import ReadOnlyAdminMixin


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


@admin.register(CertificateOrder)
class CertificateOrderAdmin(ReadOnlyAdmin):
    list_display = [
        "order_number",
        "server_name",
        "backend",
        "status",
        "dcv_attempts",
        "dcv_locked",
        "not_after",
        "created_at",
    ]
    list_filter = ["status", "backend", "dcv_locked"]
    search_fields = ["server_name", "=order_number", "validation_email", "serial"]
    fieldsets = [
        (None, {"fields": ["order_number", "server_name", "backend", "status", "last_error"]}),
        (
            "E-mail validation",
            {
                "fields": [
                    "validation_email",
                    "dcv_code_issued_at",
                    "dcv_code_expires_at",
                    "dcv_attempts",
                    "dcv_locked",
                ]
            },
        ),
        ("ACME", {"fields": ["acme_account", "acme_order_url", "acme_txt_name", "acme_txt_value"]}),
        (
            "Certificate",
            {
                "fields": [
                    "serial",
                    "issuer",
                    "not_before",
                    "not_after",
                    "issued_at",
                    "key_type",
                    "csr_pem",
                    "certificate_pem",
                    "chain_pem",
                ]
            },
        ),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]


@admin.register(CertificateAuthority)
class CertificateAuthorityAdmin(ReadOnlyAdmin):
    list_display = ["role", "subject", "serial", "not_before", "not_after"]
    fields = ["role", "subject", "serial", "not_before", "not_after", "certificate_pem"]


@admin.register(AcmeAccount)
class AcmeAccountAdmin(ReadOnlyAdmin):
    list_display = ["directory_url", "uri", "contact_email", "created_at"]
    fields = ["directory_url", "uri", "contact_email", "created_at", "updated_at"]
