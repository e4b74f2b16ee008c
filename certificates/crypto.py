"""Keys, CSRs and X.509 certificates, with `cryptography` only. Pure: no database, no settings.

Server names are lower-case A-labels without the trailing dot (the form the zones app keeps).
"""

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("rsa2048", "ec-p256")
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# X.509 caps a commonName at 64 characters; longer names go in subjectAltName only.
MAX_COMMON_NAME_LENGTH = 64
# A leaf's lifetime follows the Baseline Requirements in force (certificates.policy).
ROOT_VALIDITY = datetime.timedelta(days=20 * 365)
INTERMEDIATE_VALIDITY = datetime.timedelta(days=10 * 365)
# Tolerates clocks of relying parties that run slightly behind ours.
BACKDATE = datetime.timedelta(minutes=5)
# A CRL is signed anew on each request; relying parties may keep it this long.
CRL_VALIDITY = datetime.timedelta(days=1)
ORGANISATION = "Private Exchange portal"


class CsrError(ValueError):
    """The CSR cannot be used; the message says why."""


@dataclass(frozen=True)
class CertificateFacts:
    """What the portal shows and stores about an issued certificate."""

    serial: str  # upper-case hexadecimal
    issuer: str  # RFC 4514
    not_before: datetime.datetime
    not_after: datetime.datetime


def private_key_generate(*, key_type: str) -> PrivateKey:
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"Unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}.")


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 without a passphrase: the caller encrypts it before it is stored."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_load(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("Only RSA and EC private keys are used here.")
    return key


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificates_load(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode("ascii"))


def certificate_facts(certificate: x509.Certificate) -> CertificateFacts:
    return CertificateFacts(
        serial=format(certificate.serial_number, "X"),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )


def _server_subject(server_name: str) -> x509.Name:
    if len(server_name) > MAX_COMMON_NAME_LENGTH:
        return x509.Name([])
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name)])


def csr_build(*, key: PrivateKey, server_name: str) -> str:
    """A PEM CSR for the server name, carried in subjectAltName (and CN when it fits)."""
    subject = _server_subject(server_name)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(server_name)]),
            critical=not subject,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def csr_parse(pem: str, *, server_name: str) -> x509.CertificateSigningRequest:
    """The CSR, once checked: well-formed, self-signed correctly, for exactly this name."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode("ascii"))
    except ValueError:
        raise CsrError("The certificate request is not a valid PEM CSR.") from None
    if not csr.is_signature_valid:
        raise CsrError("The certificate request's signature does not match its key.")
    try:
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CsrError("The certificate request has no subjectAltName.") from None
    if names.get_values_for_type(x509.DNSName) != [server_name] or len(names) != 1:
        raise CsrError(f"The certificate request is not for {server_name} alone.")
    return csr


def _key_identifiers(
    public_key: CertificatePublicKeyTypes, issuer: x509.Certificate | None
) -> list[tuple[x509.ExtensionType, bool]]:
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    ]
    if issuer is not None:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        extensions.append(
            (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
        )
    return extensions


def _certificate_sign(
    *,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Certificate | None,
    issuer_key: PrivateKey,
    validity: datetime.timedelta,
    now: datetime.datetime,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    not_after = now + validity
    if issuer is not None:
        # A certificate never outlives the one that signs it.
        not_after = min(not_after, issuer.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
    )
    for extension, critical in extensions + _key_identifiers(public_key, issuer):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def root_certificate_build(
    *, key: PrivateKey, common_name: str, now: datetime.datetime
) -> x509.Certificate:
    return _certificate_sign(
        subject=_ca_name(common_name),
        public_key=key.public_key(),
        issuer=None,
        issuer_key=key,
        validity=ROOT_VALIDITY,
        now=now,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=1), True),
            (_ca_key_usage(), True),
        ],
    )


def intermediate_certificate_build(
    *,
    key: PrivateKey,
    common_name: str,
    root: x509.Certificate,
    root_key: PrivateKey,
    now: datetime.datetime,
) -> x509.Certificate:
    return _certificate_sign(
        subject=_ca_name(common_name),
        public_key=key.public_key(),
        issuer=root,
        issuer_key=root_key,
        validity=INTERMEDIATE_VALIDITY,
        now=now,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (_ca_key_usage(), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )


def leaf_certificate_build(
    *,
    csr: x509.CertificateSigningRequest,
    server_name: str,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    now: datetime.datetime,
    validity: datetime.timedelta,
    crl_url: str,
) -> x509.Certificate:
    """A TLS server certificate for the CSR's key; the name comes from the order, not the CSR.
    Relying parties learn of its revocation from the CRL at `crl_url`."""
    public_key = csr.public_key()
    subject = _server_subject(server_name)
    return _certificate_sign(
        subject=subject,
        public_key=public_key,
        issuer=issuer,
        issuer_key=issuer_key,
        validity=validity,
        now=now,
        extensions=[
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    # RSA key exchange (TLS 1.2 clients) encrypts with the server's key.
                    key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            ),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.SubjectAlternativeName([x509.DNSName(server_name)]), not subject),
            (
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(crl_url)],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                False,
            ),
        ],
    )


@dataclass(frozen=True)
class Revoked:
    serial: str  # upper-case hexadecimal, as CertificateFacts
    revoked_at: datetime.datetime
    reason: x509.ReasonFlags


def crl_build(
    *,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    revoked: list[Revoked],
    now: datetime.datetime,
) -> x509.CertificateRevocationList:
    """The issuer's CRL (RFC 5280 §5) listing the revoked serials, valid for CRL_VALIDITY."""
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        # Signed on each request: the time in microseconds only grows (RFC 5280 §5.2.3).
        .add_extension(x509.CRLNumber(int(now.timestamp() * 1_000_000)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    for entry in revoked:
        revoked_certificate = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(entry.serial, 16))
            .revocation_date(entry.revoked_at)
        )
        if entry.reason != x509.ReasonFlags.unspecified:
            # RFC 5280 §5.3.1: "unspecified" is shown by leaving the reason out.
            revoked_certificate = revoked_certificate.add_extension(
                x509.CRLReason(entry.reason), critical=False
            )
        builder = builder.add_revoked_certificate(revoked_certificate.build())
    return builder.sign(issuer_key, hashes.SHA256())
