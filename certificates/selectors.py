"""Reads of the certificates app. Never a private key: the only value decrypted here is
the DNS record's, which the customer must be shown."""

from datetime import datetime

from django.conf import settings

from certificates import dcv, encryption, policy
from certificates.acme_client import TxtRecord
from certificates.errors import CertificateOrderError
from certificates.models import CertificateAuthority, CertificateOrder


def certificate_chain_pem(*, order: CertificateOrder) -> str:
    """The certificate followed by its intermediates, as a server installs it."""
    if not order.certificate_pem:
        raise CertificateOrderError("The certificate is not issued yet.")
    return order.certificate_pem + order.chain_pem


def internal_ca_root_pem() -> str | None:
    """The internal CA's root, for clients that must trust it; None before first use."""
    return (
        CertificateAuthority.objects.filter(role=CertificateAuthority.Role.ROOT)
        .values_list("certificate_pem", flat=True)
        .first()
    )


def dcv_attempts_left(*, order: CertificateOrder) -> int:
    return max(settings.DCV_MAX_ATTEMPTS - order.dcv_attempts, 0)


def acme_txt_record(*, order: CertificateOrder) -> TxtRecord | None:
    """The DNS-01 record last asked of the customer (manual path), if any."""
    if not order.acme_txt_name:
        return None
    return TxtRecord(name=order.acme_txt_name, value=order.acme_txt_value)


def dns_validation_record(*, order: CertificateOrder) -> TxtRecord | None:
    """The TXT record that validates the order by DNS record (BR §3.2.2.4.7), decrypted
    for the customer's page or DNS Assist; None for the other methods."""
    if not order.dns_token_encrypted:
        return None
    return TxtRecord(
        name=dcv.dns_record_name(order.server_name),
        value=encryption.decrypt(order.dns_token_encrypted).decode("ascii"),
    )


def renewal_due_at(*, order: CertificateOrder) -> datetime | None:
    """When the order's certificate is to be renewed: CERTIFICATE_RENEW_BEFORE_PERCENT of
    its lifetime left. None before it is issued."""
    if order.issued_at is None:
        return None
    return policy.renewal_due_at(
        issued_at=order.issued_at,
        not_after=order.not_after,
        percent=settings.CERTIFICATE_RENEW_BEFORE_PERCENT,
    )
