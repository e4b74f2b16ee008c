"""Certificate orders, the internal CA and ACME accounts.

Private keys are kept only as Fernet tokens (certificates.encryption) in `key_encrypted`;
DCV codes only as their HMAC. Neither appears in __str__, repr or the admin.
"""

import idna
from django.db import models
from django.utils import timezone


class Backend(models.TextChoices):
    INTERNAL = "internal", "Internal CA (e-mail validation)"
    ACME = "acme", "ACME (DNS validation)"


class CertificateAuthority(models.Model):
    """The internal CA: one root and one intermediate, made on first use."""

    class Role(models.TextChoices):
        ROOT = "root", "Root"
        INTERMEDIATE = "intermediate", "Intermediate"

    role = models.CharField(max_length=12, choices=Role.choices, unique=True)
    subject = models.CharField(max_length=500)
    certificate_pem = models.TextField()
    key_encrypted = models.TextField()
    serial = models.CharField(max_length=64)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "certificate authority"
        verbose_name_plural = "certificate authorities"

    def __str__(self) -> str:
        return f"{self.get_role_display()} {self.subject}"


class AcmeAccount(models.Model):
    """One account per ACME directory, its key reused for every order."""

    directory_url = models.URLField(max_length=500, unique=True)
    uri = models.URLField("account URL", max_length=500, blank=True)
    contact_email = models.EmailField(blank=True)
    key_encrypted = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "ACME account"

    def __str__(self) -> str:
        return self.uri or self.directory_url


class CertificateOrder(models.Model):
    """A key pair, its CSR and the certificate for one server name, with its validation."""

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting validation"
        ISSUED = "issued", "Issued"
        FAILED = "failed", "Failed"

    server_name = models.CharField(max_length=253)
    validation_email = models.EmailField()
    order_number = models.PositiveIntegerField()
    backend = models.CharField(max_length=10, choices=Backend.choices)
    key_type = models.CharField(max_length=10)
    key_encrypted = models.TextField()
    csr_pem = models.TextField("CSR")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    last_error = models.TextField(blank=True)

    dcv_code_hash = models.CharField("DCV code HMAC", max_length=64, blank=True)
    dcv_code_issued_at = models.DateTimeField("DCV code sent at", null=True, blank=True)
    dcv_code_expires_at = models.DateTimeField("DCV code expires at", null=True, blank=True)
    dcv_attempts = models.PositiveSmallIntegerField("DCV wrong attempts", default=0)
    dcv_locked = models.BooleanField("DCV locked", default=False)

    acme_account = models.ForeignKey(
        AcmeAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name="ACME account",
    )
    acme_order_url = models.URLField("ACME order URL", max_length=500, blank=True)
    acme_txt_name = models.CharField("DNS-01 record name", max_length=253, blank=True)
    acme_txt_value = models.CharField("DNS-01 record value", max_length=100, blank=True)

    certificate_pem = models.TextField("certificate", blank=True)
    chain_pem = models.TextField(
        "chain", blank=True, help_text="Intermediate certificates, leaf excluded."
    )
    serial = models.CharField(max_length=64, blank=True)
    issuer = models.CharField(max_length=500, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["server_name"]),
            # /metrics counts orders by status and issued ones by time left, from it alone,
            models.Index(fields=["status", "not_after"]),
            # and finds a renewal (a newer order for the name) without reading the rows.
            models.Index(fields=["server_name", "created_at", "status"]),
        ]

    def __str__(self) -> str:
        return f"#{self.order_number} {self.server_name} ({self.get_status_display()})"

    @property
    def server_name_display(self) -> str:
        """The U-label form for people."""
        try:
            return idna.decode(self.server_name)
        except idna.IDNAError:
            return self.server_name
