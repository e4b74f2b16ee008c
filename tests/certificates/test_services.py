"""Orders, DCV codes and issuance by the internal CA."""

import subprocess
import threading
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store
from django.db import connection
from django.utils import timezone

from certificates import dcv, selectors, services
from certificates.errors import CertificateOrderError
from certificates.models import CertificateAuthority, CertificateOrder
from certificates.services import DcvOutcome
from tests.certificates.factories import CertificateOrderFactory


def _wrong(code: str) -> str:
    """Another well-formed code: same shape, last symbol changed."""
    last = "0" if code[-1] != "0" else "1"
    return code[:-1] + last


def _verify_chain(order: CertificateOrder, tmp_path) -> x509.Certificate:
    """The issued chain checked twice: by cryptography's web PKI verifier and by openssl."""
    leaf = x509.load_pem_x509_certificate(order.certificate_pem.encode())
    intermediates = x509.load_pem_x509_certificates(order.chain_pem.encode())
    root = x509.load_pem_x509_certificate(selectors.internal_ca_root_pem().encode())

    leaf.verify_directly_issued_by(intermediates[0])
    intermediates[0].verify_directly_issued_by(root)
    verifier = (
        PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(order.server_name))
    )
    assert verifier.verify(leaf, intermediates) == [leaf, *intermediates, root]

    files = {"root": selectors.internal_ca_root_pem(), "chain": order.chain_pem}
    files["leaf"] = order.certificate_pem
    for name, pem in files.items():
        (tmp_path / f"{name}.pem").write_text(pem)
    result = subprocess.run(
        [
            "openssl", "verify",
            "-CAfile", str(tmp_path / "root.pem"),
            "-untrusted", str(tmp_path / "chain.pem"),
            "-purpose", "sslserver",
            "-verify_hostname", order.server_name,
            str(tmp_path / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")
    return leaf


# Orders.


@pytest.mark.django_db
def test_order_has_a_key_and_csr_for_the_server_name(settings):
    settings.CERT_KEY_TYPE = "ec-p256"
    order = services.certificate_order_create(
        server_name="exchange.example.com",
        validation_email="admin@example.com",
        order_number=1111111,
    )
    order.refresh_from_db()
    assert order.backend == "internal"
    assert order.key_type == "ec-p256"
    assert order.status == CertificateOrder.Status.PENDING
    csr = x509.load_pem_x509_csr(order.csr_pem.encode())
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey)
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["exchange.example.com"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("server_name", "backend", "message"),
    [
        ("Exchange.example.com", None, "lower-case A-label"),
        ("exchange.exämple.com", None, "lower-case A-label"),
        ("exchange.example.com.", None, "lower-case A-label"),
        ("exchange.example.com", "letsencrypt", "Unknown CA backend"),
    ],
)
def test_order_refuses_names_and_backends_it_cannot_use(server_name, backend, message):
    with pytest.raises(ValueError, match=message):
        services.certificate_order_create(
            server_name=server_name,
            validation_email="a@example.com",
            order_number=1,
            backend=backend,
        )
    assert not CertificateOrder.objects.exists()


@pytest.mark.django_db
def test_order_str_and_repr_show_no_secret():
    order = CertificateOrderFactory()
    services.dcv_code_issue(order=order)
    for text in (str(order), repr(order)):
        assert order.server_name in text
        assert order.key_encrypted not in text
        assert "KEY" not in text
        assert order.dcv_code_hash not in text


# DCV codes.


@pytest.mark.django_db
def test_code_is_stored_only_as_a_hash():
    order = CertificateOrderFactory()

    code = services.dcv_code_issue(order=order)

    normalised = dcv.dcv_code_normalise(code)
    row = CertificateOrder.objects.filter(pk=order.pk).values().get()
    for value in row.values():
        if isinstance(value, str):
            assert normalised not in value.upper().replace("-", "")
            assert code not in value
    assert len(row["dcv_code_hash"]) == 64
    assert order.dcv_code_hash == row["dcv_code_hash"]  # the caller's instance is up to date


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ttl", "expected"), [(30 * 24 * 3600, timedelta(days=30)), (3600, timedelta(hours=1))]
)
def test_code_expiry_follows_the_setting(settings, ttl, expected):
    settings.DCV_CODE_TTL = ttl
    order = CertificateOrderFactory()
    services.dcv_code_issue(order=order)
    assert order.dcv_code_expires_at - order.dcv_code_issued_at == expected


@pytest.mark.django_db
def test_code_never_lives_longer_than_30_days(settings):
    settings.DCV_CODE_TTL = 90 * 24 * 3600
    order = CertificateOrderFactory()
    services.dcv_code_issue(order=order)
    assert order.dcv_code_expires_at - order.dcv_code_issued_at == timedelta(days=30)


@pytest.mark.django_db
@pytest.mark.parametrize("key_type", ["rsa2048", "ec-p256"])
def test_valid_code_issues_a_chain_that_verifies(settings, tmp_path, key_type):
    settings.CERT_KEY_TYPE = key_type
    order = CertificateOrderFactory(server_name="exchange.example.com")
    code = services.dcv_code_issue(order=order)

    result = services.dcv_code_verify(order_id=order.pk, code=code)

    assert result.outcome == DcvOutcome.VALID
    order.refresh_from_db()
    assert order.status == CertificateOrder.Status.ISSUED
    leaf = _verify_chain(order, tmp_path)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["exchange.example.com"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    expected_key = rsa.RSAPublicKey if key_type == "rsa2048" else ec.EllipticCurvePublicKey
    assert isinstance(leaf.public_key(), expected_key)
    assert leaf.public_key() == x509.load_pem_x509_csr(order.csr_pem.encode()).public_key()
    # The stored facts are the certificate's.
    assert order.serial == format(leaf.serial_number, "X")
    assert order.issuer == leaf.issuer.rfc4514_string()
    assert "Private Exchange Internal Issuing CA" in order.issuer
    assert order.not_before == leaf.not_valid_before_utc
    assert order.not_after == leaf.not_valid_after_utc
    assert order.not_after - order.not_before <= timedelta(days=200)


@pytest.mark.django_db
def test_pasted_code_is_accepted_in_lower_case_with_spaces():
    order = CertificateOrderFactory()
    code = services.dcv_code_issue(order=order)

    result = services.dcv_code_verify(
        order_id=order.pk, code=f"  {code.replace('-', ' ').lower()} "
    )

    assert result.outcome == DcvOutcome.VALID


@pytest.mark.django_db
def test_wrong_codes_count_down_then_lock(settings):
    settings.DCV_MAX_ATTEMPTS = 5
    order = CertificateOrderFactory()
    code = services.dcv_code_issue(order=order)

    outcomes = [services.dcv_code_verify(order_id=order.pk, code=_wrong(code)) for _ in range(5)]

    assert [r.outcome for r in outcomes] == [DcvOutcome.INVALID] * 4 + [DcvOutcome.LOCKED]
    assert [r.attempts_left for r in outcomes] == [4, 3, 2, 1, 0]
    # Locked: even the right code is refused, and nothing more is counted.
    result = services.dcv_code_verify(order_id=order.pk, code=code)
    assert result.outcome == DcvOutcome.LOCKED
    order.refresh_from_db()
    assert (order.dcv_attempts, order.dcv_locked) == (5, True)
    assert order.status == CertificateOrder.Status.PENDING
    assert not order.certificate_pem


@pytest.mark.django_db
def test_a_new_code_unlocks_and_the_old_one_stops_working(settings):
    settings.DCV_MAX_ATTEMPTS = 2
    order = CertificateOrderFactory()
    old = services.dcv_code_issue(order=order)
    for _ in range(2):
        services.dcv_code_verify(order_id=order.pk, code=_wrong(old))

    new = services.dcv_code_issue(order=order)

    assert (order.dcv_attempts, order.dcv_locked) == (0, False)
    assert services.dcv_code_verify(order_id=order.pk, code=old).outcome == DcvOutcome.INVALID
    result = services.dcv_code_verify(order_id=order.pk, code=new)
    assert result.outcome == DcvOutcome.VALID
    assert result.order.status == CertificateOrder.Status.ISSUED


@pytest.mark.django_db
def test_malformed_paste_counts_as_a_wrong_attempt():
    order = CertificateOrderFactory()
    services.dcv_code_issue(order=order)
    result = services.dcv_code_verify(order_id=order.pk, code="not a code")
    assert (result.outcome, result.attempts_left) == (DcvOutcome.INVALID, 4)


@pytest.mark.django_db
def test_expired_code_is_refused_without_counting():
    order = CertificateOrderFactory()
    code = services.dcv_code_issue(order=order)
    CertificateOrder.objects.filter(pk=order.pk).update(
        dcv_code_expires_at=timezone.now() - timedelta(seconds=1)
    )

    result = services.dcv_code_verify(order_id=order.pk, code=code)

    assert (result.outcome, result.attempts_left) == (DcvOutcome.EXPIRED, 5)
    assert result.order.status == CertificateOrder.Status.PENDING


@pytest.mark.django_db
def test_no_code_sent_yet_reads_as_expired():
    order = CertificateOrderFactory()
    result = services.dcv_code_verify(order_id=order.pk, code=dcv.dcv_code_generate())
    assert result.outcome == DcvOutcome.EXPIRED


@pytest.mark.django_db
def test_code_of_another_order_is_refused():
    order, other = CertificateOrderFactory(), CertificateOrderFactory()
    services.dcv_code_issue(order=order)
    other_code = services.dcv_code_issue(order=other)

    result = services.dcv_code_verify(order_id=order.pk, code=other_code)

    assert result.outcome == DcvOutcome.INVALID
    assert result.order.status == CertificateOrder.Status.PENDING
    other.refresh_from_db()
    assert (other.status, other.dcv_attempts) == (CertificateOrder.Status.PENDING, 0)


@pytest.mark.django_db
def test_codes_are_not_valid_under_another_secret_key(settings):
    order = CertificateOrderFactory()
    code = services.dcv_code_issue(order=order)
    previous = settings.SECRET_KEY

    settings.SECRET_KEY = "rotated-secret-key"
    assert services.dcv_code_verify(order_id=order.pk, code=code).outcome == DcvOutcome.INVALID
    settings.SECRET_KEY_FALLBACKS = [previous]
    assert services.dcv_code_verify(order_id=order.pk, code=code).outcome == DcvOutcome.VALID


@pytest.mark.django_db
def test_issuance_happens_once(tmp_path):
    order = CertificateOrderFactory()
    code = services.dcv_code_issue(order=order)
    first = services.dcv_code_verify(order_id=order.pk, code=code).order

    again = services.dcv_code_verify(order_id=order.pk, code=code)
    wrong = services.dcv_code_verify(order_id=order.pk, code=_wrong(code))

    assert again.outcome == DcvOutcome.VALID
    assert wrong.outcome == DcvOutcome.INVALID
    order.refresh_from_db()
    assert (order.serial, order.certificate_pem) == (first.serial, first.certificate_pem)
    assert order.issued_at == first.issued_at
    assert CertificateAuthority.objects.count() == 2
    with pytest.raises(CertificateOrderError, match="already issued"):
        services.dcv_code_issue(order=order)


@pytest.mark.django_db
def test_internal_ca_is_made_once_and_reused():
    assert selectors.internal_ca_root_pem() is None
    root, intermediate = services.internal_ca_ensure()
    assert services.internal_ca_ensure() == (root, intermediate)
    assert CertificateAuthority.objects.count() == 2
    assert selectors.internal_ca_root_pem() == root.certificate_pem
    root_cert = x509.load_pem_x509_certificate(root.certificate_pem.encode())
    assert root_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.serial == format(root_cert.serial_number, "X")


@pytest.mark.django_db
def test_acme_orders_have_no_email_validation():
    order = CertificateOrderFactory(backend="acme")
    with pytest.raises(CertificateOrderError, match="through DNS"):
        services.dcv_code_issue(order=order)
    with pytest.raises(CertificateOrderError, match="through DNS"):
        services.dcv_code_verify(order_id=order.pk, code=dcv.dcv_code_generate())


@pytest.mark.django_db
def test_changing_the_validation_address_voids_the_code_sent_to_the_old_one(settings):
    settings.DCV_MAX_ATTEMPTS = 1
    order = CertificateOrderFactory(validation_email="admin@example.com")
    code = services.dcv_code_issue(order=order)
    services.dcv_code_verify(order_id=order.pk, code=_wrong(code))

    changed = services.validation_email_change(order_id=order.pk, address="postmaster@example.com")

    assert changed.validation_email == "postmaster@example.com"
    assert (changed.dcv_code_hash, changed.dcv_attempts, changed.dcv_locked) == ("", 0, False)
    assert services.dcv_code_verify(order_id=order.pk, code=code).outcome == DcvOutcome.EXPIRED


@pytest.mark.django_db
def test_address_cannot_change_after_issuance():
    order = CertificateOrderFactory()
    services.dcv_code_verify(order_id=order.pk, code=services.dcv_code_issue(order=order))
    with pytest.raises(CertificateOrderError):
        services.validation_email_change(order_id=order.pk, address="hostmaster@example.com")


# Downloads.


@pytest.mark.django_db
def test_chain_download_is_the_certificate_and_intermediate_never_the_key():
    order = CertificateOrderFactory()
    with pytest.raises(CertificateOrderError, match="not issued"):
        selectors.certificate_chain_pem(order=order)
    services.dcv_code_verify(order_id=order.pk, code=services.dcv_code_issue(order=order))
    order.refresh_from_db()

    pem = selectors.certificate_chain_pem(order=order)

    certificates = x509.load_pem_x509_certificates(pem.encode())
    assert [c.subject.rfc4514_string() for c in certificates][1:] == [order.issuer]
    assert "PRIVATE KEY" not in pem


# Concurrency: every attempt counts once, whatever the interleaving.


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_attempts_are_all_counted(settings):
    settings.DCV_MAX_ATTEMPTS = 5
    order = CertificateOrderFactory()
    code = services.dcv_code_issue(order=order)
    outcomes: list[DcvOutcome] = []
    start = threading.Barrier(8)

    def attempt() -> None:
        try:
            start.wait()
            result = services.dcv_code_verify(order_id=order.pk, code=_wrong(code))
            outcomes.append(result.outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    order.refresh_from_db()
    assert (order.dcv_attempts, order.dcv_locked) == (5, True)
    assert sorted(outcomes) == sorted([DcvOutcome.INVALID] * 4 + [DcvOutcome.LOCKED] * 4)


@pytest.mark.django_db(transaction=True)
def test_internal_ca_made_by_concurrent_first_uses_is_one():
    pairs = []
    start = threading.Barrier(4)

    def first_use() -> None:
        try:
            start.wait()
            pairs.append(services.internal_ca_ensure())
        finally:
            connection.close()

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert CertificateAuthority.objects.count() == 2
    assert len({(root.pk, intermediate.pk) for root, intermediate in pairs}) == 1
    assert len(pairs) == 4
