"""A commercial ACME CA: External Account Binding, short certificates, renewal and revocation,
against a real pebble that requires EAB and checks DNS-01 records through a real BIND9."""

import datetime

import pytest
from cryptography import x509

from certificates import services
from certificates.acme_client import AcmeError
from certificates.models import AcmeAccount, CertificateOrder
from tests.certificates.factories import CertificateOrderFactory

SHORT_VALIDITY = 600  # seconds

Status = CertificateOrder.Status


@pytest.fixture
def eab_pebble(pebble_with):
    return pebble_with(eab_required=True, certificate_validity=SHORT_VALIDITY)


def _obtain(order: CertificateOrder, dns_writer, bind_server) -> CertificateOrder:
    return services.acme_certificate_obtain(
        order_id=order.pk, dns_writer=dns_writer, zone=bind_server.zone
    )


@pytest.mark.django_db
def test_registration_without_eab_is_refused(
    eab_pebble, settings, bind_server, dns_writer, server_name
):
    settings.ACME_EAB_KID = settings.ACME_EAB_HMAC_KEY = ""
    order = CertificateOrderFactory(server_name=server_name, backend="acme")

    with pytest.raises(AcmeError) as refused:
        _obtain(order, dns_writer, bind_server)

    assert not refused.value.transient
    assert "external account" in refused.value.message.lower()
    order.refresh_from_db()
    assert (order.status, order.certificate_pem) == (Status.FAILED, "")
    assert order.last_error == refused.value.message
    assert AcmeAccount.objects.get().uri == ""  # never registered


@pytest.mark.django_db
def test_registration_with_a_wrong_mac_key_is_refused(
    eab_pebble, settings, bind_server, dns_writer, server_name
):
    settings.ACME_EAB_HMAC_KEY = "A" * 64
    order = CertificateOrderFactory(server_name=server_name, backend="acme")

    with pytest.raises(AcmeError) as refused:
        _obtain(order, dns_writer, bind_server)

    assert not refused.value.transient
    order.refresh_from_db()
    assert order.status == Status.FAILED


@pytest.mark.django_db
def test_a_mac_key_that_is_not_base64url_is_a_clear_error(
    eab_pebble, settings, bind_server, dns_writer, server_name
):
    settings.ACME_EAB_HMAC_KEY = "not base64!"
    order = CertificateOrderFactory(server_name=server_name, backend="acme")

    with pytest.raises(AcmeError, match="ACME_EAB_HMAC_KEY"):
        _obtain(order, dns_writer, bind_server)


@pytest.mark.django_db
def test_bound_account_gets_a_short_certificate(eab_pebble, bind_server, dns_writer, server_name):
    order = CertificateOrderFactory(server_name=server_name, backend="acme")

    issued = _obtain(order, dns_writer, bind_server)

    assert issued.status == Status.ISSUED
    assert issued.method == "acme"
    assert eab_pebble.certificate_status(issued.serial)["Status"] == "Valid"
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert abs(lifetime - datetime.timedelta(seconds=SHORT_VALIDITY)) <= datetime.timedelta(
        seconds=1
    )
    assert issued.validated_at == issued.issued_at
    assert AcmeAccount.objects.get().uri.startswith("https://127.0.0.1:")


@pytest.mark.django_db
def test_renewal_through_acme_is_unattended(eab_pebble, bind_server, dns_writer, server_name):
    first = _obtain(
        CertificateOrderFactory(server_name=server_name, backend="acme"), dns_writer, bind_server
    )

    renewal = services.certificate_order_renew(previous_order_id=first.pk)
    # The ACME CA decides what it reuses: the new order goes through it again.
    assert renewal.dcv_code is None
    assert renewal.order.status == Status.PENDING
    first.refresh_from_db()
    assert first.status == Status.RENEWING

    second = _obtain(renewal.order, dns_writer, bind_server)

    first.refresh_from_db()
    assert (first.status, second.status) == (Status.SUPERSEDED, Status.ISSUED)
    assert second.serial != first.serial
    assert second.not_after > first.not_after
    new_key = x509.load_pem_x509_certificate(second.certificate_pem.encode()).public_key()
    old_key = x509.load_pem_x509_certificate(first.certificate_pem.encode()).public_key()
    assert new_key != old_key
    assert eab_pebble.certificate_status(second.serial)["Status"] == "Valid"


@pytest.mark.django_db
def test_revocation_reaches_the_ca(eab_pebble, bind_server, dns_writer, server_name):
    issued = _obtain(
        CertificateOrderFactory(server_name=server_name, backend="acme"), dns_writer, bind_server
    )

    revoked = services.certificate_revoke(order_id=issued.pk, reason=1)

    status = eab_pebble.certificate_status(issued.serial)
    assert (status["Status"], status["Reason"]) == ("Revoked", 1)
    assert revoked.status == Status.REVOKED
    assert revoked.revocation_reason == 1 and revoked.revoked_at is not None
    # Again: the CA already revoked it, nothing more happens.
    assert services.certificate_revoke(order_id=issued.pk, reason=1).status == Status.REVOKED


@pytest.mark.django_db
def test_revocation_with_the_ca_down_is_transient_and_changes_nothing(
    eab_pebble, bind_server, dns_writer, server_name
):
    issued = _obtain(
        CertificateOrderFactory(server_name=server_name, backend="acme"), dns_writer, bind_server
    )
    eab_pebble.stop()

    with pytest.raises(AcmeError) as down:
        services.certificate_revoke(order_id=issued.pk, reason=4)

    assert down.value.transient
    issued.refresh_from_db()
    assert (issued.status, issued.revoked_at, issued.revocation_reason) == (
        Status.ISSUED,
        None,
        None,
    )


@pytest.mark.django_db
def test_renewal_with_the_ca_down_leaves_it_owed(eab_pebble, bind_server, dns_writer, server_name):
    first = _obtain(
        CertificateOrderFactory(server_name=server_name, backend="acme"), dns_writer, bind_server
    )
    renewal = services.certificate_order_renew(previous_order_id=first.pk).order
    eab_pebble.stop()

    with pytest.raises(AcmeError) as down:
        _obtain(renewal, dns_writer, bind_server)

    assert down.value.transient
    renewal.refresh_from_db()
    first.refresh_from_db()
    assert (renewal.status, first.status) == (Status.PENDING, Status.RENEWING)
    assert renewal.last_error == down.value.message
    assert first.certificate_pem and not renewal.certificate_pem
