"""Read-only views for operators. The private keys, the DCV code hashes and the DNS record
values are left out."""

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
        "method",
        "status",
        "dcv_attempts",
        "dcv_locked",
        "not_after",
        "created_at",
    ]
    list_filter = ["status", "backend", "method", "dcv_locked"]
    search_fields = ["server_name", "=order_number", "validation_email", "serial"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "order_number",
                    "server_name",
                    "backend",
                    "method",
                    "status",
                    "last_error",
                    "renewal_of",
                    "validated_at",
                ]
            },
        ),
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
        ("DNS record validation", {"fields": ["dns_token_expires_at"]}),
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
                    "key_destroyed_at",
                    "revoked_at",
                    "revocation_reason",
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
