"""Certificate orders, the internal CA and ACME accounts.

Private keys are kept only as Fernet tokens (outbox.encryption) in `key_encrypted`,
and so is the random value of a validation by DNS record; DCV codes only as their HMAC.
None of them appears in __str__, repr or the admin.
"""

from typing import ClassVar

import idna
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition


class Backend(models.TextChoices):
    INTERNAL = "internal", "Internal CA (e-mail validation)"
    ACME = "acme", "ACME (DNS validation)"


class CertificateAuthority(models.Model):
    """The internal CA: one root and one intermediate, made on first use."""

    class Role(models.TextChoices):
        ROOT = "root", "Root"
        INTERMEDIATE = "intermediate", "Intermediate"

    encrypted_fields: ClassVar = ("key_encrypted",)

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

    encrypted_fields: ClassVar = ("key_encrypted",)

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


class Method(models.TextChoices):
    """How control of the name is proven: email and DNS record with the internal CA
    (BR §3.2.2.4.4 and §3.2.2.4.7), DNS-01 with an ACME CA."""

    EMAIL = "email", "E-mail"
    DNS = "dns", "DNS record"
    ACME = "acme", "ACME DNS-01"


class CertificateStatus(models.TextChoices):
    """The certificate's track. An order waits for validation, then its certificate is valid
    until it is replaced (superseded), revoked or runs out. "issued" is the track's *valid*
    (the value predates the track and is what the platform's code and pages compare with)."""

    PENDING = "pending", "Awaiting validation"
    ISSUED = "issued", "Valid"
    RENEWING = "renewing", "Renewing"  # valid; its replacement is under way
    EXPIRING = "expiring", "Expiring"  # valid, close to its end and not yet replaced
    EXPIRED = "expired", "Expired"
    SUPERSEDED = "superseded", "Replaced"  # by the renewal that was issued
    REVOKED = "revoked", "Revoked"
    FAILED = "failed", "Failed"  # the ACME CA refused; a retry starts again


S = CertificateStatus
# A certificate in one of these states is the one servers use.
IN_USE = [S.ISSUED, S.RENEWING, S.EXPIRING]


class CertificateOrder(FSMModelMixin, models.Model):
    """A key pair, its CSR and the certificate for one server name, with its validation.
    A renewal is a new order pointing at the one it replaces (`renewal_of`): nothing is
    overwritten, and the series of orders is the name's certificate history."""

    Status = CertificateStatus
    encrypted_fields: ClassVar = ("key_encrypted", "dns_token_encrypted")

    server_name = models.CharField(max_length=253)
    validation_email = models.EmailField()
    order_number = models.PositiveIntegerField()
    backend = models.CharField(max_length=10, choices=Backend.choices)
    method = models.CharField(max_length=5, choices=Method.choices, default=Method.EMAIL)
    key_type = models.CharField(max_length=10)
    key_encrypted = models.TextField()
    csr_pem = models.TextField("CSR")
    status = FSMField(max_length=10, choices=Status.choices, default=Status.PENDING, protected=True)
    last_error = models.TextField(blank=True)
    # One to one: a certificate is replaced by one renewal at most, even when two workers
    # renew it at the same moment.
    renewal_of = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="renewal",
        help_text="The order whose certificate this one replaces.",
    )
    validated_at = models.DateTimeField(
        null=True, blank=True, help_text="When control of the name was last proven."
    )
    key_destroyed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the private key was wiped (replaced and expired)."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="RFC 5280 CRLReason code."
    )

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

    dns_token_encrypted = models.TextField("DNS record value (encrypted)", blank=True)
    dns_token_expires_at = models.DateTimeField(
        "DNS record value expires at", null=True, blank=True
    )

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
            # The admin's search by order number (migration 0004, built concurrently).
            models.Index(fields=["order_number"], name="certificate_order_number_idx"),
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

    # The track's transitions; the services in certificates.services call them. An ACME
    # order moves between pending and failed by conditional UPDATEs instead, made while no
    # row lock is held (the CA may be slow).

    @transition(field=status, source=[S.PENDING, S.FAILED], target=S.ISSUED)
    def issue(self) -> None:
        pass

    @transition(field=status, source=S.ISSUED, target=S.RENEWING)
    def start_renewal(self) -> None:
        pass

    @transition(field=status, source=[S.ISSUED, S.RENEWING], target=S.EXPIRING)
    def near_expiry(self) -> None:
        pass

    @transition(field=status, source=IN_USE, target=S.EXPIRED)
    def expire(self) -> None:
        pass

    @transition(field=status, source=[*IN_USE, S.EXPIRED], target=S.SUPERSEDED)
    def supersede(self) -> None:
        pass

    # From expired too: the CA may have agreed while the sweep marked it expired.
    @transition(field=status, source=[*IN_USE, S.SUPERSEDED, S.EXPIRED], target=S.REVOKED)
    def revoke(self) -> None:
        pass
