from cryptography.fernet import Fernet

from certificates.system_checks import certificate_settings


def _ids(settings) -> list[str]:
    return [error.id for error in certificate_settings(None)]


def test_default_settings_pass(settings):
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    assert _ids(settings) == []


def test_wrong_settings_are_reported(settings, tmp_path):
    settings.CA_BACKEND = "acme"
    settings.ACME_DIRECTORY_URL = ""
    settings.CERT_KEY_TYPE = "rsa1024"
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode(), "not-a-fernet-key"]
    settings.ACME_CA_BUNDLE = str(tmp_path / "missing.pem")

    errors = certificate_settings(None)

    assert [error.id for error in errors] == [
        "certificates.E002",
        "certificates.E003",
        "certificates.E004",
        "certificates.E005",
    ]
    assert "key 2 is not a Fernet key" in errors[1].msg
    assert "not-a-fernet-key" not in errors[1].msg


def test_unknown_backend_is_reported(settings):
    settings.CA_BACKEND = "letsencrypt"
    assert _ids(settings) == ["certificates.E001"]


def test_renewal_settings_out_of_range_are_reported(settings):
    settings.CERTIFICATE_LIFETIME = 0
    settings.CERTIFICATE_RENEW_BEFORE_PERCENT = 100
    settings.DCV_REUSE_PERIOD = -1

    errors = certificate_settings(None)

    assert [error.id for error in errors] == [
        "certificates.E006",
        "certificates.E007",
        "certificates.E008",
    ]
    assert "between 1 and 99" in errors[1].msg


def test_external_account_binding_settings_are_checked(settings):
    settings.ACME_EAB_KID = "kid-1"
    settings.ACME_EAB_HMAC_KEY = ""
    assert _ids(settings) == ["certificates.E009"]

    settings.ACME_EAB_HMAC_KEY = "secret/with+plain=base64"
    errors = certificate_settings(None)
    assert [error.id for error in errors] == ["certificates.E010"]
    assert "secret" not in errors[0].msg

    settings.ACME_EAB_HMAC_KEY = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
    assert _ids(settings) == []
