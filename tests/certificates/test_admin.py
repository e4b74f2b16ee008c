import pytest
from django.urls import reverse

from certificates import encryption, selectors, services
from certificates.models import AcmeAccount, CertificateAuthority
from tests.certificates.factories import CertificateOrderFactory


@pytest.fixture
def issued_order(db):
    """Issued after one wrong code."""
    order = CertificateOrderFactory()
    code = services.dcv_code_issue(order=order)
    services.dcv_code_verify(order_id=order.pk, code="00000-00000-00000-00000-00000")
    services.dcv_code_verify(order_id=order.pk, code=code)
    order.refresh_from_db()
    assert (order.status, order.dcv_attempts) == ("issued", 1)
    return order


@pytest.mark.django_db
def test_order_pages_show_the_certificate_but_no_secret(admin_client, issued_order):
    order = issued_order
    pages = [
        reverse("admin:certificates_certificateorder_changelist"),
        reverse("admin:certificates_certificateorder_change", args=[order.pk]),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert order.server_name in html
        assert order.key_encrypted not in html
        assert order.dcv_code_hash not in html
        assert "PRIVATE KEY" not in html
    assert order.serial in html
    assert order.issuer in html
    assert "DCV wrong attempts" in html


@pytest.mark.django_db
def test_ca_and_account_pages_show_no_key(admin_client, issued_order):
    account = AcmeAccount.objects.create(
        directory_url="https://acme.example/dir",
        uri="https://acme.example/acct/1",
        key_encrypted=encryption.encrypt(b"-----BEGIN PRIVATE KEY-----"),
    )
    secrets = [
        account.key_encrypted,
        *CertificateAuthority.objects.values_list("key_encrypted", flat=True),
    ]
    for ca in CertificateAuthority.objects.all():
        html = admin_client.get(
            reverse("admin:certificates_certificateauthority_change", args=[ca.pk])
        ).content.decode()
        assert ca.serial in html
        assert not any(secret in html for secret in secrets)
    html = admin_client.get(
        reverse("admin:certificates_acmeaccount_change", args=[account.pk])
    ).content.decode()
    assert account.uri in html
    assert not any(secret in html for secret in secrets)


@pytest.mark.django_db
def test_admin_is_read_only(admin_client, issued_order):
    assert admin_client.get(reverse("admin:certificates_certificateorder_add")).status_code == 403
    delete = reverse("admin:certificates_certificateorder_delete", args=[issued_order.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:certificates_certificateorder_change", args=[issued_order.pk])
    admin_client.post(change, {"status": "pending"})
    issued_order.refresh_from_db()
    assert issued_order.status == "issued"


@pytest.mark.django_db
def test_renewal_and_dns_validation_shown_without_the_record_value(admin_client, issued_order):
    renewal = services.certificate_order_renew(previous_order_id=issued_order.pk).order
    dns_order = CertificateOrderFactory(method="dns")
    value = selectors.dns_validation_record(order=dns_order).value

    html = admin_client.get(
        reverse("admin:certificates_certificateorder_change", args=[renewal.pk])
    ).content.decode()
    # What it renews, now replaced.
    assert f"#{issued_order.order_number} {issued_order.server_name} (Replaced)" in html
    assert "Validated at" in html and "Key destroyed at" in html
    listing = admin_client.get(
        reverse("admin:certificates_certificateorder_changelist") + "?method__exact=dns"
    ).content.decode()
    assert dns_order.server_name in listing and renewal.server_name not in listing
    page = admin_client.get(
        reverse("admin:certificates_certificateorder_change", args=[dns_order.pk])
    ).content.decode()
    assert "DNS record value expires at" in page
    assert value not in page and dns_order.dns_token_encrypted not in page
