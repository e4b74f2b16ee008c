import io

import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from django.core.management import call_command

from certificates import crypto, encryption, selectors, services
from certificates.models import AcmeAccount, CertificateAuthority, CertificateOrder
from outbox.encryption import encryption_keys_rotate
from tests.certificates.factories import CertificateOrderFactory

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def _stored_key(order: CertificateOrder) -> str:
    """The column as the database holds it, not as the model would show it."""
    return CertificateOrder.objects.filter(pk=order.pk).values_list("key_encrypted", flat=True)[0]


@pytest.mark.django_db
def test_private_key_is_stored_encrypted_and_decrypts_to_the_csr_key():
    order = CertificateOrderFactory()

    stored = _stored_key(order)

    assert "PRIVATE KEY" not in stored
    plain = encryption.decrypt(stored)
    # No line of the key's base64 DER either. (A fixed prefix such as "MII" also turns up
    # by chance in about one Fernet token in a hundred.)
    assert not any(line in stored for line in plain.decode().splitlines()[1:-1])
    key = crypto.private_key_load(plain)
    csr = x509.load_pem_x509_csr(order.csr_pem.encode())
    assert csr.public_key() == key.public_key()


@pytest.mark.django_db
def test_default_key_is_derived_from_secret_key(settings):
    settings.FIELD_ENCRYPTION_KEY = []
    token = encryption.encrypt(b"secret material")
    assert encryption.decrypt(token) == b"secret material"

    settings.SECRET_KEY = "another-secret-key"
    with pytest.raises(encryption.DecryptionError):
        encryption.decrypt(token)


@pytest.mark.django_db
def test_rotation_keeps_old_values_readable_then_moves_them_to_the_new_key(settings):
    settings.FIELD_ENCRYPTION_KEY = [OLD_KEY]
    order = CertificateOrderFactory()
    order_number = order.order_number
    dns_order = CertificateOrderFactory(method="dns")
    dns_record = selectors.dns_validation_record(order=dns_order)
    services.internal_ca_ensure()
    AcmeAccount.objects.create(
        directory_url="https://acme.example/dir", key_encrypted=encryption.encrypt(b"account")
    )
    before = _stored_key(order)

    # A new key in front: values made with the old one still decrypt.
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY, OLD_KEY]
    assert crypto.private_key_load(encryption.decrypt(before))
    output = io.StringIO()
    call_command("rotate_encryption_keys", stdout=output)

    # 2 CA keys, the ACME account's, 2 orders' keys and the DNS value.
    assert "Re-encrypted 6 value(s)" in output.getvalue()
    # The old key can go: everything now opens with the new key alone.
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY]
    after = _stored_key(order)
    assert after != before
    assert encryption.decrypt(after) == Fernet(OLD_KEY).decrypt(before.encode())
    for ca in CertificateAuthority.objects.all():
        assert crypto.private_key_load(encryption.decrypt(ca.key_encrypted))
    assert encryption.decrypt(AcmeAccount.objects.get().key_encrypted) == b"account"
    dns_order.refresh_from_db()
    assert selectors.dns_validation_record(order=dns_order) == dns_record
    settings.FIELD_ENCRYPTION_KEY = [OLD_KEY]
    with pytest.raises(encryption.DecryptionError, match="FIELD_ENCRYPTION_KEY"):
        encryption.decrypt(after)
    # Rotation touched nothing else.
    assert CertificateOrder.objects.get(pk=order.pk).order_number == order_number


@pytest.mark.django_db
def test_rotation_with_a_removed_key_fails_loudly(settings):
    settings.FIELD_ENCRYPTION_KEY = [OLD_KEY]
    CertificateOrderFactory()
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY]
    with pytest.raises(encryption.DecryptionError):
        encryption_keys_rotate()
