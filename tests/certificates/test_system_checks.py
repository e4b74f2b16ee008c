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
