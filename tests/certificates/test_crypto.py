import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certificates import crypto


def test_rsa_2048_key():
    key = crypto.private_key_generate(key_type="rsa2048")
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048


def test_ec_p256_key():
    key = crypto.private_key_generate(key_type="ec-p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)


def test_unknown_key_type_is_refused():
    with pytest.raises(ValueError, match="rsa2048, ec-p256"):
        crypto.private_key_generate(key_type="dsa1024")


def test_key_pem_round_trip():
    key = crypto.private_key_generate(key_type="ec-p256")
    loaded = crypto.private_key_load(crypto.private_key_pem(key))
    assert loaded.private_numbers() == key.private_numbers()


@pytest.mark.parametrize("key_type", crypto.KEY_TYPES)
def test_csr_names_the_server_in_subject_alt_name(key_type):
    key = crypto.private_key_generate(key_type=key_type)
    pem = crypto.csr_build(key=key, server_name="exchange.example.com")

    csr = crypto.csr_parse(pem, server_name="exchange.example.com")

    assert csr.is_signature_valid
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["exchange.example.com"]
    assert not san.critical
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "exchange.example.com"
    )
    assert csr.public_key() == key.public_key()


def test_name_too_long_for_common_name_goes_in_san_only():
    name = "exchange." + "a" * 60 + ".example.com"
    key = crypto.private_key_generate(key_type="ec-p256")

    csr = crypto.csr_parse(crypto.csr_build(key=key, server_name=name), server_name=name)

    assert len(csr.subject) == 0
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical  # RFC 5280 4.2.1.6: critical when the subject is empty
    assert san.value.get_values_for_type(x509.DNSName) == [name]


def test_csr_for_another_name_is_refused():
    key = crypto.private_key_generate(key_type="ec-p256")
    pem = crypto.csr_build(key=key, server_name="mail.example.com")
    with pytest.raises(crypto.CsrError, match=r"not for exchange\.example\.com"):
        crypto.csr_parse(pem, server_name="exchange.example.com")


def test_garbage_csr_is_refused():
    with pytest.raises(crypto.CsrError, match="not a valid PEM CSR"):
        crypto.csr_parse("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", server_name="a.example")
