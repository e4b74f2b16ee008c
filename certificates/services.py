"""Writes of the certificates app: orders, validation (email code, DNS record, ACME DNS-01),
issuance, renewal, revocation, and the keys' rotation and destruction. Plain values in;
nothing here knows what a platform is."""

import functools
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from certificates import acme_client, crypto, dcv, encryption, policy, selectors
from certificates.acme_client import AcmeError, DnsWriter, IssuedChain, TxtRecord
from certificates.errors import CertificateOrderError
from certificates.models import (
    IN_USE,
    AcmeAccount,
    Backend,
    CertificateAuthority,
    CertificateOrder,
    Method,
)

logger = logging.getLogger(__name__)

# Baseline Requirements 3.2.2.4: a random value for DCV lives at most 30 days.
DCV_MAX_TTL = timedelta(days=30)
ROOT_COMMON_NAME = "Private Exchange Internal Root CA"
INTERMEDIATE_COMMON_NAME = "Private Exchange Internal Issuing CA"
# Short: the record only lives for the few seconds of the CA's check.
ACME_TXT_TTL = 60
# Seconds the CA may take to check the record and sign; the worker's job lease is longer.
ACME_TIMEOUT = 120
SWEEP_BATCH_SIZE = 500
# RFC 5280 §5.3.1 reasons a subscriber may give (BR §7.2.2; the rest are the CA's own).
REVOCATION_REASONS = {
    0: x509.ReasonFlags.unspecified,
    1: x509.ReasonFlags.key_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
}

Status = CertificateOrder.Status
_METHOD_PHRASES = {
    Method.EMAIL: "by e-mail",
    Method.DNS: "through a DNS record",
    Method.ACME: "through DNS (ACME)",
}
# Orders still waiting for their certificate (a failed ACME order may be tried again).
AWAITING = [Status.PENDING, Status.FAILED]

_DCV_FIELDS = ["dcv_code_hash", "dcv_code_issued_at", "dcv_code_expires_at", "dcv_attempts"]


class DnsOutcome(StrEnum):
    ISSUED = "issued"  # the record was found (now or before)
    NOT_FOUND = "not_found"
    EXPIRED = "expired"  # the value is too old to prove anything: ask for a new one


@dataclass(frozen=True)
class DnsCheck:
    outcome: DnsOutcome
    record: TxtRecord
    found: list[str]  # the TXT values served at the record's name
    order: CertificateOrder


@dataclass(frozen=True)
class Renewal:
    order: CertificateOrder  # the new order
    # The new validation code to email to order.validation_email; None when there is
    # nothing to send (issued at once, another method, or asked before).
    dcv_code: str | None


class DcvOutcome(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    EXPIRED = "expired"  # also when no code was ever sent
    LOCKED = "locked"  # too many wrong codes: only a new code unlocks


@dataclass(frozen=True)
class DcvResult:
    outcome: DcvOutcome
    attempts_left: int
    order: CertificateOrder


def certificate_order_create(
    *,
    server_name: str,
    validation_email: str,
    order_number: int,
    backend: str | None = None,
    method: str | None = None,
) -> CertificateOrder:
    """A new key pair and CSR for the server name (a lower-case A-label FQDN). The internal
    CA validates by email (the default) or DNS record; an ACME CA by DNS-01."""
    backend = backend or settings.CA_BACKEND
    if backend not in Backend.values:
        raise ValueError(f"Unknown CA backend {backend!r}; use one of {', '.join(Backend.values)}.")
    method = method or (Method.ACME if backend == Backend.ACME else Method.EMAIL)
    if (backend == Backend.ACME) != (method == Method.ACME):
        raise ValueError(f"The {backend} CA does not validate by {method}.")
    if not server_name.isascii() or server_name != server_name.strip(". ").lower():
        raise ValueError(f"{server_name!r} is not a lower-case A-label name.")
    return _order_new(
        server_name=server_name,
        validation_email=validation_email,
        order_number=order_number,
        backend=backend,
        method=method,
        renewal_of=None,
    )


@transaction.atomic
def validation_email_change(*, order_id: int, address: str) -> CertificateOrder:
    """Send validation to another address (the caller checks it is one of those offered).
    A code already sent proves nothing about the new address, so it stops working."""
    order = _locked(order_id)
    _require_awaiting(order)
    order.validation_email = address
    order.dcv_code_hash = ""
    order.dcv_code_issued_at = order.dcv_code_expires_at = None
    order.dcv_attempts = 0
    order.dcv_locked = False
    order.save(update_fields=["validation_email", "dcv_locked", *_DCV_FIELDS, "updated_at"])
    return order


@transaction.atomic
def dcv_code_issue(*, order: CertificateOrder) -> str:
    """A new validation code for the email (display form); only its hash is kept.
    Replaces any previous code, and unlocks the order."""
    locked = _locked(order.pk)
    _require_method(locked, Method.EMAIL)
    _require_awaiting(locked)
    code = dcv.dcv_code_generate()
    now = timezone.now()
    locked.dcv_code_hash = dcv.dcv_code_hash(dcv.dcv_code_normalise(code), key=_dcv_keys()[0])
    locked.dcv_code_issued_at = now
    locked.dcv_code_expires_at = now + _dcv_ttl()
    locked.dcv_attempts = 0
    locked.dcv_locked = False
    fields = ["dcv_locked", *_DCV_FIELDS, "updated_at"]
    locked.save(update_fields=fields)
    for name in fields:
        setattr(order, name, getattr(locked, name))
    return code


@transaction.atomic
def dcv_code_verify(*, order_id: int, code: str) -> DcvResult:
    """Check a pasted code; a right one has the internal CA issue the certificate.

    The row lock makes concurrent attempts count one by one. Once issued, the right code
    still answers `valid` and nothing is issued again."""
    order = _locked(order_id)
    _require_method(order, Method.EMAIL)
    matches = _dcv_matches(order, code)
    if order.status != Status.PENDING:
        return _dcv_result(order, DcvOutcome.VALID if matches else DcvOutcome.INVALID)
    if order.dcv_locked:
        return _dcv_result(order, DcvOutcome.LOCKED)
    if not order.dcv_code_hash or order.dcv_code_expires_at <= timezone.now():
        return _dcv_result(order, DcvOutcome.EXPIRED)
    if not matches:
        order.dcv_attempts += 1
        order.dcv_locked = order.dcv_attempts >= settings.DCV_MAX_ATTEMPTS
        order.save(update_fields=["dcv_attempts", "dcv_locked", "updated_at"])
        return _dcv_result(order, DcvOutcome.LOCKED if order.dcv_locked else DcvOutcome.INVALID)
    _internal_certificate_issue(order, validated_at=None)
    return _dcv_result(order, DcvOutcome.VALID)


def internal_ca_ensure() -> tuple[CertificateAuthority, CertificateAuthority]:
    """The internal root and intermediate, made on first use."""
    Role = CertificateAuthority.Role
    existing = {ca.role: ca for ca in CertificateAuthority.objects.all()}
    if len(existing) < len(Role):
        try:
            with transaction.atomic():
                return _internal_ca_create()
        except IntegrityError:
            # Another process made them first (role is unique): use theirs.
            existing = {ca.role: ca for ca in CertificateAuthority.objects.all()}
    return existing[Role.ROOT], existing[Role.INTERMEDIATE]


def acme_certificate_obtain(*, order_id: int, dns_writer: DnsWriter, zone: str) -> CertificateOrder:
    """DNS Assist: have the ACME CA issue the certificate, writing the DNS-01 record into
    the zone with the writer (and removing it afterwards).

    Talks to the CA outside any transaction, so a slow CA holds no database lock; the
    caller runs one attempt per order at a time. Raises AcmeError after recording it."""
    order = _acme_order(order_id)
    if order.status not in AWAITING:
        return order
    try:
        account, session = _acme_session()
        pending = _acme_pending(order, account, session)
        chain = acme_client.dns01_complete(
            session=session,
            pending=pending,
            csr_pem=order.csr_pem,
            dns_writer=dns_writer,
            zone=zone,
            ttl=ACME_TXT_TTL,
            timeout=ACME_TIMEOUT,
        )
    except AcmeError as error:
        _acme_failed(order_id, error)
        raise
    return _certificate_store(order_id, chain)


def acme_manual_challenge(*, order_id: int) -> TxtRecord:
    """Without DNS Assist: the TXT record the customer must add. The same record while the
    CA's order is still open; a new one after the order failed or expired."""
    order = _acme_order(order_id)
    _require_awaiting(order)
    try:
        account, session = _acme_session()
        return _acme_pending(order, account, session).record
    except AcmeError as error:
        _acme_failed(order_id, error)
        raise


def acme_manual_complete(*, order_id: int) -> CertificateOrder:
    """Without DNS Assist, once the customer's TXT record is served (the caller checks
    it first: the CA looks only once, and a miss fails the order)."""
    order = _acme_order(order_id)
    if order.status not in AWAITING:
        return order
    if not order.acme_order_url:
        raise CertificateOrderError("No ACME order yet: ask for the TXT record first.")
    try:
        _, session = _acme_session()
        chain = acme_client.order_complete(
            session=session,
            order_url=order.acme_order_url,
            csr_pem=order.csr_pem,
            timeout=ACME_TIMEOUT,
        )
    except AcmeError as error:
        _acme_failed(order_id, error)
        raise
    return _certificate_store(order_id, chain)


@transaction.atomic
def certificate_order_renew(*, previous_order_id: int) -> Renewal:
    """The next certificate for the previous order's name: a new order with a new key pair
    and CSR. When the name's last validation may still be reused (policy, DCV_REUSE_PERIOD),
    the internal CA issues it at once; otherwise it awaits validation by the same method,
    with a new code for email. Asked again, it returns the renewal already made."""
    previous = _locked(previous_order_id)
    existing = CertificateOrder.objects.filter(renewal_of=previous).first()
    if existing is not None:
        return Renewal(order=existing, dcv_code=None)
    if previous.status not in [*IN_USE, Status.EXPIRED, Status.REVOKED]:
        raise CertificateOrderError("Only an issued certificate can be renewed.")
    order = _order_new(
        server_name=previous.server_name,
        validation_email=previous.validation_email,
        order_number=_order_number_new(),
        backend=previous.backend,
        method=previous.method,
        renewal_of=previous,
    )
    reusable = previous.backend == Backend.INTERNAL and policy.validation_reusable(
        validated_at=previous.validated_at,
        method=previous.method,
        now=timezone.now(),
        configured=settings.DCV_REUSE_PERIOD,
    )
    if reusable:
        _internal_certificate_issue(order, validated_at=previous.validated_at)
        logger.info("Certificate order %s renewed at once by %s", previous.pk, order.pk)
        return Renewal(order=order, dcv_code=None)
    if previous.status == Status.ISSUED:
        previous.start_renewal()
        previous.save(update_fields=["status", "updated_at"])
    code = dcv_code_issue(order=order) if order.method == Method.EMAIL else None
    logger.info("Certificate order %s renewed by %s, awaiting validation", previous.pk, order.pk)
    return Renewal(order=order, dcv_code=code)


@transaction.atomic
def validation_method_change(*, order_id: int, method: str) -> CertificateOrder:
    """Switch a waiting internal-CA order between email and DNS record. What proved
    nothing under the old method stops working: the code sent, or the DNS value. To email,
    the caller then sends a new code (dcv_code_issue)."""
    order = _locked(order_id)
    if order.backend != Backend.INTERNAL or method not in (Method.EMAIL, Method.DNS):
        raise CertificateOrderError("The internal CA validates by e-mail or DNS record only.")
    _require_awaiting(order)
    if order.method == method:
        return order
    order.method = method
    order.dcv_code_hash = order.dns_token_encrypted = ""
    order.dcv_code_issued_at = order.dcv_code_expires_at = order.dns_token_expires_at = None
    order.dcv_attempts = 0
    order.dcv_locked = False
    if method == Method.DNS:
        _dns_token_set(order)
    order.save()
    return order


@transaction.atomic
def dns_token_issue(*, order_id: int) -> TxtRecord:
    """A new random value for the DNS record (the last one expired); the old one stops
    working."""
    order = _locked(order_id)
    _require_method(order, Method.DNS)
    _require_awaiting(order)
    _dns_token_set(order)
    order.save(update_fields=["dns_token_encrypted", "dns_token_expires_at", "updated_at"])
    return selectors.dns_validation_record(order=order)


def dns_record_verify(*, order_id: int, txt_lookup: Callable[[str], Iterable[str]]) -> DnsCheck:
    """Look for the order's TXT record and have the internal CA issue the certificate once
    its value is served. `txt_lookup` takes the record's name and returns the values served
    there (the caller asks the zone's authoritative servers, never a cache; its errors are
    its own). It runs before any row lock is taken, as DNS may be slow."""
    order = CertificateOrder.objects.get(pk=order_id)
    _require_method(order, Method.DNS)
    record = selectors.dns_validation_record(order=order)
    if order.status not in AWAITING:
        return DnsCheck(outcome=DnsOutcome.ISSUED, record=record, found=[], order=order)
    if order.dns_token_expires_at <= timezone.now():
        return DnsCheck(outcome=DnsOutcome.EXPIRED, record=record, found=[], order=order)
    found = list(txt_lookup(record.name))
    if not dcv.dns_token_found(record.value, found):
        return DnsCheck(outcome=DnsOutcome.NOT_FOUND, record=record, found=found, order=order)
    with transaction.atomic():
        locked = _locked(order_id)
        if locked.status in AWAITING and locked.dns_token_encrypted == order.dns_token_encrypted:
            _internal_certificate_issue(locked, validated_at=None)
        elif locked.status in AWAITING:
            # A new value was asked for while we looked: the one found proves nothing now.
            return DnsCheck(outcome=DnsOutcome.NOT_FOUND, record=record, found=found, order=locked)
    return DnsCheck(outcome=DnsOutcome.ISSUED, record=record, found=found, order=locked)


def certificate_orders_expiry_mark() -> int:
    """Move certificates in use along their track by the clock: expiring within
    policy.EXPIRING_WITHIN of their end, expired after it. Returns how many moved; bounded,
    and a rerun finds nothing more to do."""
    now = timezone.now()
    due = Q(
        status__in=[Status.ISSUED, Status.RENEWING], not_after__lte=now + policy.EXPIRING_WITHIN
    )
    due |= Q(status__in=IN_USE, not_after__lte=now)
    moved = 0
    with transaction.atomic():
        rows = (
            CertificateOrder.objects.select_for_update(skip_locked=True)
            .filter(due)
            .order_by("not_after")[:SWEEP_BATCH_SIZE]
        )
        for order in rows:
            if order.not_after <= now:
                order.expire()
            else:
                order.near_expiry()
            order.save(update_fields=["status", "updated_at"])
            moved += 1
    return moved


def certificate_keys_destroy_expired() -> int:
    """Wipe the private keys no server may use again: of certificates replaced or revoked,
    and past their end. The row keeps the fact (key_destroyed_at). Returns how many; bounded,
    safe to rerun."""
    now = timezone.now()
    ids = list(
        CertificateOrder.objects.filter(
            status__in=[Status.SUPERSEDED, Status.REVOKED],
            not_after__lte=now,
            key_destroyed_at__isnull=True,
        ).values_list("pk", flat=True)[:SWEEP_BATCH_SIZE]
    )
    destroyed = CertificateOrder.objects.filter(pk__in=ids, key_destroyed_at__isnull=True).update(
        key_encrypted="", key_destroyed_at=now, updated_at=now
    )
    if destroyed:
        logger.info("Private keys of %d replaced and expired certificates destroyed", destroyed)
    return destroyed


def certificate_revoke(*, order_id: int, reason: int) -> CertificateOrder:
    """Revoke the order's certificate, for an RFC 5280 reason a subscriber may give
    (REVOCATION_REASONS). An ACME CA is asked first (RFC 8555 §7.6), outside any
    transaction, and the order is marked only once it agreed: a CA that cannot be reached
    raises a transient AcmeError and changes nothing. The internal CA lists it in its CRL
    from then on. Revoking twice does nothing more."""
    if reason not in REVOCATION_REASONS:
        raise ValueError(
            f"Revocation reason {reason} is not one a subscriber may give "
            f"({', '.join(map(str, REVOCATION_REASONS))})."
        )
    order = CertificateOrder.objects.get(pk=order_id)
    if order.status == Status.REVOKED:
        return order
    if order.status not in [*IN_USE, Status.SUPERSEDED]:
        raise CertificateOrderError("Only a certificate in force can be revoked.")
    if order.not_after <= timezone.now():
        raise CertificateOrderError("The certificate has expired: there is nothing to revoke.")
    if order.backend == Backend.ACME:
        try:
            _, session = _acme_session()
            acme_client.certificate_revoke(
                session=session, certificate_pem=order.certificate_pem, reason=reason
            )
        except AcmeError as error:
            logger.warning("Revocation of order %s: %s", order_id, error.message)
            raise
    with transaction.atomic():
        order = _locked(order_id)
        if order.status != Status.REVOKED:
            order.revoke()
            order.revoked_at = timezone.now()
            order.revocation_reason = reason
            order.save()
    logger.info("Certificate %s of %s revoked (reason %d)", order.serial, order.server_name, reason)
    return order


def internal_ca_crl() -> bytes:
    """The internal CA's CRL in DER, signed now by the intermediate, listing every
    certificate it issued and revoked."""
    _, intermediate = internal_ca_ensure()
    revoked = CertificateOrder.objects.filter(
        backend=Backend.INTERNAL, status=Status.REVOKED, issuer=intermediate.subject
    ).values_list("serial", "revoked_at", "revocation_reason")
    crl = crypto.crl_build(
        issuer=crypto.certificates_load(intermediate.certificate_pem)[0],
        issuer_key=_issuer_key(intermediate.key_encrypted),
        revoked=[
            crypto.Revoked(serial=serial, revoked_at=at, reason=REVOCATION_REASONS[reason])
            for serial, at, reason in revoked
        ],
        now=timezone.now(),
    )
    return crl.public_bytes(serialization.Encoding.DER)


def _locked(order_id: int) -> CertificateOrder:
    return CertificateOrder.objects.select_for_update().get(pk=order_id)


def _require_awaiting(order: CertificateOrder) -> None:
    if order.status not in AWAITING:
        raise CertificateOrderError("The certificate is already issued.")


def _require_method(order: CertificateOrder, method: str) -> None:
    if order.method != method:
        raise CertificateOrderError(
            f"This order is validated {_METHOD_PHRASES[order.method]}, "
            f"not {_METHOD_PHRASES[method]}."
        )


def _dcv_ttl() -> timedelta:
    return min(timedelta(seconds=settings.DCV_CODE_TTL), DCV_MAX_TTL)


def _dns_token_set(order: CertificateOrder) -> None:
    order.dns_token_encrypted = encryption.encrypt(dcv.dns_token_generate().encode("ascii"))
    order.dns_token_expires_at = timezone.now() + _dcv_ttl()


def _order_number_new() -> int:
    """Seven digits, like the platforms' order numbers, and no other order's."""
    while True:
        number = secrets.randbelow(9_000_000) + 1_000_000
        if not CertificateOrder.objects.filter(order_number=number).exists():
            return number


def _order_new(
    *,
    server_name: str,
    validation_email: str,
    order_number: int,
    backend: str,
    method: str,
    renewal_of: CertificateOrder | None,
) -> CertificateOrder:
    key = crypto.private_key_generate(key_type=settings.CERT_KEY_TYPE)
    order = CertificateOrder(
        server_name=server_name,
        validation_email=validation_email,
        order_number=order_number,
        backend=backend,
        method=method,
        key_type=settings.CERT_KEY_TYPE,
        key_encrypted=encryption.encrypt(crypto.private_key_pem(key)),
        csr_pem=crypto.csr_build(key=key, server_name=server_name),
        renewal_of=renewal_of,
    )
    if method == Method.DNS:
        _dns_token_set(order)
    order.save()
    return order


def _dcv_keys() -> list[bytes]:
    """HMAC keys for DCV codes, newest first: codes sent before a SECRET_KEY rotation
    still verify while the old key is in SECRET_KEY_FALLBACKS."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [encryption.secret_key_derive(secret=s, purpose="dcv-code") for s in secrets]


def _dcv_matches(order: CertificateOrder, code: str) -> bool:
    if not order.dcv_code_hash:
        return False
    try:
        normalised = dcv.dcv_code_normalise(code)
    except dcv.DcvCodeError:
        return False
    return dcv.dcv_code_matches(normalised, stored_hash=order.dcv_code_hash, keys=_dcv_keys())


def _dcv_result(order: CertificateOrder, outcome: DcvOutcome) -> DcvResult:
    return DcvResult(
        outcome=outcome, attempts_left=selectors.dcv_attempts_left(order=order), order=order
    )


def _internal_ca_create() -> tuple[CertificateAuthority, CertificateAuthority]:
    now = timezone.now()
    root_key = crypto.private_key_generate(key_type=settings.CERT_KEY_TYPE)
    root_cert = crypto.root_certificate_build(key=root_key, common_name=ROOT_COMMON_NAME, now=now)
    key = crypto.private_key_generate(key_type=settings.CERT_KEY_TYPE)
    cert = crypto.intermediate_certificate_build(
        key=key, common_name=INTERMEDIATE_COMMON_NAME, root=root_cert, root_key=root_key, now=now
    )
    root = _ca_save(CertificateAuthority.Role.ROOT, root_cert, root_key)
    intermediate = _ca_save(CertificateAuthority.Role.INTERMEDIATE, cert, key)
    logger.info("Internal CA created: %s, %s", root.subject, intermediate.subject)
    return root, intermediate


def _ca_save(role: str, certificate, key: crypto.PrivateKey) -> CertificateAuthority:
    facts = crypto.certificate_facts(certificate)
    return CertificateAuthority.objects.create(
        role=role,
        subject=certificate.subject.rfc4514_string(),
        certificate_pem=crypto.certificate_pem(certificate),
        key_encrypted=encryption.encrypt(crypto.private_key_pem(key)),
        serial=facts.serial,
        not_before=facts.not_before,
        not_after=facts.not_after,
    )


@functools.lru_cache(maxsize=4)
def _issuer_key(key_encrypted: str) -> crypto.PrivateKey:
    """The intermediate's key, decrypted and loaded once per process (loading an RSA key
    checks it, which costs more than the signature); a rotated key is a new entry."""
    return crypto.private_key_load(encryption.decrypt(key_encrypted))


def _internal_certificate_issue(order: CertificateOrder, *, validated_at: datetime | None) -> None:
    """Sign the order's CSR with the intermediate, for the lifetime the Baseline Requirements
    allow today; the caller holds the order's row lock."""
    _, intermediate = internal_ca_ensure()
    issuer = crypto.certificates_load(intermediate.certificate_pem)[0]
    now = timezone.now()
    leaf = crypto.leaf_certificate_build(
        csr=crypto.csr_parse(order.csr_pem, server_name=order.server_name),
        server_name=order.server_name,
        issuer=issuer,
        issuer_key=_issuer_key(intermediate.key_encrypted),
        now=now,
        validity=policy.certificate_lifetime(on=now, configured=settings.CERTIFICATE_LIFETIME),
        crl_url=internal_ca_crl_url(),
    )
    chain = IssuedChain(
        certificate_pem=crypto.certificate_pem(leaf), chain_pem=intermediate.certificate_pem
    )
    _issued_fields_set(order, chain, validated_at=validated_at)


def internal_ca_crl_url() -> str:
    """Where the internal CA publishes its CRL, as named in its certificates."""
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse("ca-crl")


def _issued_fields_set(
    order: CertificateOrder, chain: IssuedChain, *, validated_at: datetime | None
) -> None:
    """Store the certificate (validated when it is issued, unless `validated_at` says
    earlier); the one it renews, if any, is now replaced. The caller holds the order's row
    lock."""
    facts = crypto.certificate_facts(crypto.certificates_load(chain.certificate_pem)[0])
    order.certificate_pem = chain.certificate_pem
    order.chain_pem = chain.chain_pem
    order.serial = facts.serial
    order.issuer = facts.issuer
    order.not_before = facts.not_before
    order.not_after = facts.not_after
    order.issued_at = timezone.now()
    order.validated_at = validated_at or order.issued_at
    order.issue()
    order.last_error = ""
    order.save()
    logger.info("Certificate %s issued for %s by %s", facts.serial, order.server_name, facts.issuer)
    if order.renewal_of_id is not None:
        previous = _locked(order.renewal_of_id)
        if previous.status in [*IN_USE, Status.EXPIRED]:
            previous.supersede()
            previous.save(update_fields=["status", "updated_at"])


@transaction.atomic
def _certificate_store(order_id: int, chain: IssuedChain) -> CertificateOrder:
    """Keep the chain the CA returned, unless a concurrent run stored one first. The CA
    validated the name just now."""
    order = _locked(order_id)
    if order.status in AWAITING:
        _issued_fields_set(order, chain, validated_at=None)
    return order


def _acme_order(order_id: int) -> CertificateOrder:
    order = CertificateOrder.objects.get(pk=order_id)
    if order.backend != Backend.ACME:
        raise CertificateOrderError("This order is validated by e-mail, not through ACME.")
    return order


def _acme_session() -> tuple[AcmeAccount, acme_client.AcmeSession]:
    directory_url = settings.ACME_DIRECTORY_URL
    if not directory_url:
        raise AcmeError("No ACME CA is configured (ACME_DIRECTORY_URL is empty).", transient=False)
    account = AcmeAccount.objects.filter(directory_url=directory_url).first()
    if account is None:
        try:
            with transaction.atomic():
                account = AcmeAccount.objects.create(
                    directory_url=directory_url,
                    contact_email=settings.ACME_CONTACT_EMAIL,
                    key_encrypted=encryption.encrypt(acme_client.account_key_generate()),
                )
        except IntegrityError:
            # Another worker registered this directory's account at the same moment.
            account = AcmeAccount.objects.get(directory_url=directory_url)
    session = acme_client.session_open(
        directory_url=directory_url,
        ca_bundle=settings.ACME_CA_BUNDLE,
        account_key_pem=encryption.decrypt(account.key_encrypted),
        contact_email=account.contact_email,
        external_account=_external_account(),
    )
    if session.account_uri != account.uri:
        account.uri = session.account_uri
        account.save(update_fields=["uri", "updated_at"])
    return account, session


def _external_account() -> acme_client.ExternalAccount | None:
    if not settings.ACME_EAB_KID:
        return None
    return acme_client.ExternalAccount(
        kid=settings.ACME_EAB_KID, hmac_key=settings.ACME_EAB_HMAC_KEY
    )


def _acme_pending(
    order: CertificateOrder, account: AcmeAccount, session: acme_client.AcmeSession
) -> acme_client.PendingOrder:
    """The CA's order for this certificate order: the one already open, or a new one."""
    if order.acme_order_url and order.acme_account_id == account.pk:
        pending = acme_client.order_resume(
            session=session, order_url=order.acme_order_url, csr_pem=order.csr_pem
        )
        if pending is not None:
            return pending
    pending = acme_client.order_start(session=session, csr_pem=order.csr_pem)
    CertificateOrder.objects.filter(pk=order.pk).update(
        acme_account=account,
        acme_order_url=pending.url,
        acme_txt_name=pending.record.name,
        acme_txt_value=pending.record.value,
        status=Status.PENDING,  # a failed order is tried again
        last_error="",
        updated_at=timezone.now(),
    )
    return pending


def _acme_failed(order_id: int, error: AcmeError) -> None:
    """Record the failure on the order; a permanent one marks it failed until a retry."""
    fields: dict = {"last_error": error.message, "updated_at": timezone.now()}
    if not error.transient:
        fields["status"] = Status.FAILED
    CertificateOrder.objects.filter(pk=order_id, status__in=AWAITING).update(**fields)
    logger.warning("ACME order %s: %s", order_id, error.message)


def certificate_key_destroy(*, order_id: int) -> bool:
    """Wipe the order's private key now (its platform is terminated); the row keeps the
    fact. Returns whether a key was destroyed (False: done before)."""
    now = timezone.now()
    return bool(
        CertificateOrder.objects.filter(pk=order_id, key_destroyed_at__isnull=True).update(
            key_encrypted="", key_destroyed_at=now, updated_at=now
        )
    )
