"""Read-only views for operators. The private keys, the DCV code hashes and the DNS record
values are left out."""

from django.contrib import admin
from django.db.models import Q

from certificates.models import AcmeAccount, CertificateAuthority, CertificateOrder
from outbox.admin import EstimatedCountPaginator, ReadOnlyAdminMixin
from outbox.search import order_number_of, search_words

SEARCHED_TEXT = ["server_name", "validation_email", "serial"]


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
    # The same fields, searched by get_search_results so that indexes serve each.
    search_help_text = (
        "A piece of the server name, validation address or serial, or the whole order number. "
        "Several words: each must be found."
    )
    show_full_result_count = False
    paginator = EstimatedCountPaginator
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

    def get_search_results(self, request, queryset, search_term):
        """Django's search, but the order number compared as a number (its index) instead
        of its text (`UPPER(order_number::text) = ...`, which no index serves and which
        made PostgreSQL read every order): the same orders are found. The pieces of text
        are Django's `icontains`, served on PostgreSQL by the trigram index of migration
        0004."""
        for word in search_words(search_term):
            condition = Q.create(
                [(f"{name}__icontains", word) for name in SEARCHED_TEXT], connector=Q.OR
            )
            number = order_number_of(word)
            if number is not None:
                condition |= Q(order_number=number)
            queryset = queryset.filter(condition)
        return queryset, False


@admin.register(CertificateAuthority)
class CertificateAuthorityAdmin(ReadOnlyAdmin):
    list_display = ["role", "subject", "serial", "not_before", "not_after"]
    fields = ["role", "subject", "serial", "not_before", "not_after", "certificate_pem"]


@admin.register(AcmeAccount)
class AcmeAccountAdmin(ReadOnlyAdmin):
    list_display = ["directory_url", "uri", "contact_email", "created_at"]
    fields = ["directory_url", "uri", "contact_email", "created_at", "updated_at"]
