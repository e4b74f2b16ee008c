"""Writes of the certificates app: orders, DCV codes, issuance (internal CA or ACME) and the
rotation of the encryption keys. Plain values in; nothing here knows what a platform is."""

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from certificates import acme_client, crypto, dcv, encryption, selectors
from certificates.acme_client import AcmeError, DnsWriter, IssuedChain, TxtRecord
from certificates.errors import CertificateOrderError
from certificates.models import AcmeAccount, Backend, CertificateAuthority, CertificateOrder

logger = logging.getLogger(__name__)

# Baseline Requirements 3.2.2.4: a random value for DCV lives at most 30 days.
DCV_MAX_TTL = timedelta(days=30)
ROOT_COMMON_NAME = "Private Exchange Internal Root CA"
INTERMEDIATE_COMMON_NAME = "Private Exchange Internal Issuing CA"
# Short: the record only lives for the few seconds of the CA's check.
ACME_TXT_TTL = 60
# Seconds the CA may take to check the record and sign; the worker's job lease is longer.
ACME_TIMEOUT = 120
ROTATION_BATCH_SIZE = 200

_DCV_FIELDS = ["dcv_code_hash", "dcv_code_issued_at", "dcv_code_expires_at", "dcv_attempts"]


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
    *, server_name: str, validation_email: str, order_number: int, backend: str | None = None
) -> CertificateOrder:
    """A new key pair and CSR for the server name (a lower-case A-label FQDN)."""
    backend = backend or settings.CA_BACKEND
    if backend not in Backend.values:
        raise ValueError(f"Unknown CA backend {backend!r}; use one of {', '.join(Backend.values)}.")
    if not server_name.isascii() or server_name != server_name.strip(". ").lower():
        raise ValueError(f"{server_name!r} is not a lower-case A-label name.")
    key = crypto.private_key_generate(key_type=settings.CERT_KEY_TYPE)
    return CertificateOrder.objects.create(
        server_name=server_name,
        validation_email=validation_email,
        order_number=order_number,
        backend=backend,
        key_type=settings.CERT_KEY_TYPE,
        key_encrypted=encryption.encrypt(crypto.private_key_pem(key)),
        csr_pem=crypto.csr_build(key=key, server_name=server_name),
    )


@transaction.atomic
def validation_email_change(*, order_id: int, address: str) -> CertificateOrder:
    """Send validation to another address (the caller checks it is one of those offered).
    A code already sent proves nothing about the new address, so it stops working."""
    order = _locked(order_id)
    if order.status == CertificateOrder.Status.ISSUED:
        raise CertificateOrderError("The certificate is already issued.")
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
    if locked.backend != Backend.INTERNAL:
        raise CertificateOrderError("This order is validated through DNS (ACME), not by e-mail.")
    if locked.status == CertificateOrder.Status.ISSUED:
        raise CertificateOrderError("The certificate is already issued.")
    code = dcv.dcv_code_generate()
    now = timezone.now()
    locked.dcv_code_hash = dcv.dcv_code_hash(dcv.dcv_code_normalise(code), key=_dcv_keys()[0])
    locked.dcv_code_issued_at = now
    locked.dcv_code_expires_at = now + min(timedelta(seconds=settings.DCV_CODE_TTL), DCV_MAX_TTL)
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
    if order.backend != Backend.INTERNAL:
        raise CertificateOrderError("This order is validated through DNS (ACME), not by e-mail.")
    matches = _dcv_matches(order, code)
    if order.status == CertificateOrder.Status.ISSUED:
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
    _internal_certificate_issue(order)
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
    if order.status == CertificateOrder.Status.ISSUED:
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
    if order.status == CertificateOrder.Status.ISSUED:
        raise CertificateOrderError("The certificate is already issued.")
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
    if order.status == CertificateOrder.Status.ISSUED:
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


def encryption_keys_rotate() -> int:
    """Re-encrypt every stored private key with the newest FIELD_ENCRYPTION_KEY; returns
    how many. Run it after putting a new key first, before removing the old one."""
    count = 0
    for model in (CertificateAuthority, AcmeAccount, CertificateOrder):
        last_pk = 0
        while True:
            with transaction.atomic():
                rows = list(
                    model.objects.select_for_update()
                    .filter(pk__gt=last_pk)
                    .order_by("pk")
                    .only("pk", "key_encrypted")[:ROTATION_BATCH_SIZE]
                )
                for row in rows:
                    row.key_encrypted = encryption.reencrypt(row.key_encrypted)
                model.objects.bulk_update(rows, ["key_encrypted"])
            if not rows:
                break
            count += len(rows)
            last_pk = rows[-1].pk
    return count


def _locked(order_id: int) -> CertificateOrder:
    return CertificateOrder.objects.select_for_update().get(pk=order_id)


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


def _internal_certificate_issue(order: CertificateOrder) -> None:
    """Sign the order's CSR with the intermediate; the caller holds the order's row lock."""
    _, intermediate = internal_ca_ensure()
    issuer = crypto.certificates_load(intermediate.certificate_pem)[0]
    leaf = crypto.leaf_certificate_build(
        csr=crypto.csr_parse(order.csr_pem, server_name=order.server_name),
        server_name=order.server_name,
        issuer=issuer,
        issuer_key=_issuer_key(intermediate.key_encrypted),
        now=timezone.now(),
    )
    chain = IssuedChain(
        certificate_pem=crypto.certificate_pem(leaf), chain_pem=intermediate.certificate_pem
    )
    _issued_fields_set(order, chain)


def _issued_fields_set(order: CertificateOrder, chain: IssuedChain) -> None:
    facts = crypto.certificate_facts(crypto.certificates_load(chain.certificate_pem)[0])
    order.certificate_pem = chain.certificate_pem
    order.chain_pem = chain.chain_pem
    order.serial = facts.serial
    order.issuer = facts.issuer
    order.not_before = facts.not_before
    order.not_after = facts.not_after
    order.issued_at = timezone.now()
    order.status = CertificateOrder.Status.ISSUED
    order.last_error = ""
    order.save()
    logger.info("Certificate %s issued for %s by %s", facts.serial, order.server_name, facts.issuer)


@transaction.atomic
def _certificate_store(order_id: int, chain: IssuedChain) -> CertificateOrder:
    """Keep the chain the CA returned, unless a concurrent run stored one first."""
    order = _locked(order_id)
    if order.status != CertificateOrder.Status.ISSUED:
        _issued_fields_set(order, chain)
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
    )
    if session.account_uri != account.uri:
        account.uri = session.account_uri
        account.save(update_fields=["uri", "updated_at"])
    return account, session


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
        status=CertificateOrder.Status.PENDING,
        last_error="",
        updated_at=timezone.now(),
    )
    return pending


def _acme_failed(order_id: int, error: AcmeError) -> None:
    """Record the failure on the order; a permanent one marks it failed until a retry."""
    fields: dict = {"last_error": error.message, "updated_at": timezone.now()}
    if not error.transient:
        fields["status"] = CertificateOrder.Status.FAILED
    CertificateOrder.objects.filter(pk=order_id).exclude(
        status=CertificateOrder.Status.ISSUED
    ).update(**fields)
    logger.warning("ACME order %s: %s", order_id, error.message)
