"""Revocation by the internal CA: its CRL, fetched over HTTP as a relying party would."""

import pytest
from cryptography import x509
from django.urls import reverse

from certificates import services
from certificates.errors import CertificateOrderError
from certificates.models import CertificateAuthority, CertificateOrder
from tests.certificates.factories import CertificateOrderFactory

Status = CertificateOrder.Status


def _issued() -> CertificateOrder:
    order = CertificateOrderFactory()
    services.dcv_code_verify(order_id=order.pk, code=services.dcv_code_issue(order=order))
    return CertificateOrder.objects.get(pk=order.pk)


def _crl(client) -> x509.CertificateRevocationList:
    response = client.get("/ca/intermediate.crl")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pkix-crl"
    return x509.load_der_x509_crl(response.content)


def _intermediate() -> x509.Certificate:
    ca = CertificateAuthority.objects.get(role=CertificateAuthority.Role.INTERMEDIATE)
    return x509.load_pem_x509_certificate(ca.certificate_pem.encode())


@pytest.mark.django_db
def test_a_revoked_certificate_is_listed_in_the_crl_its_certificate_names(client, settings):
    settings.PORTAL_BASE_URL = "http://testserver"
    revoked, kept = _issued(), _issued()

    order = services.certificate_revoke(order_id=revoked.pk, reason=1)

    assert (order.status, order.revocation_reason) == (Status.REVOKED, 1)
    leaf = x509.load_pem_x509_certificate(revoked.certificate_pem.encode())
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    url = points[0].full_name[0].value
    assert url == "http://testserver" + reverse("ca-crl")
    crl = _crl(client)
    intermediate = _intermediate()
    assert crl.is_signature_valid(intermediate.public_key())
    assert crl.issuer == intermediate.subject == leaf.issuer
    entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert entry is not None
    assert entry.revocation_date_utc == order.revoked_at.replace(microsecond=0)
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    kept_serial = int(kept.serial, 16)
    assert crl.get_revoked_certificate_by_serial_number(kept_serial) is None
    assert crl.next_update_utc > crl.last_update_utc


@pytest.mark.django_db
def test_the_crl_of_a_ca_that_revoked_nothing_is_empty_and_signed(client):
    _issued()

    crl = _crl(client)

    assert len(crl) == 0
    assert crl.is_signature_valid(_intermediate().public_key())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > 0


@pytest.mark.django_db
def test_revocation_for_an_unspecified_reason_carries_no_reason(client):
    order = _issued()

    services.certificate_revoke(order_id=order.pk, reason=0)

    entry = _crl(client).get_revoked_certificate_by_serial_number(int(order.serial, 16))
    assert entry is not None and len(entry.extensions) == 0


@pytest.mark.django_db
def test_revoking_twice_keeps_the_first_revocation():
    order = _issued()
    first = services.certificate_revoke(order_id=order.pk, reason=4)

    again = services.certificate_revoke(order_id=order.pk, reason=1)

    assert (again.revoked_at, again.revocation_reason) == (first.revoked_at, 4)


@pytest.mark.django_db
def test_a_replaced_certificate_can_be_revoked_revoke_and_replace():
    compromised = _issued()
    replacement = services.certificate_order_renew(previous_order_id=compromised.pk).order

    services.certificate_revoke(order_id=compromised.pk, reason=1)

    assert CertificateOrder.objects.get(pk=compromised.pk).status == Status.REVOKED
    assert CertificateOrder.objects.get(pk=replacement.pk).status == Status.ISSUED


@pytest.mark.django_db
def test_bad_revocations_are_refused_and_change_nothing():
    pending, issued = CertificateOrderFactory(), _issued()

    with pytest.raises(ValueError, match="0, 1, 3, 4, 5"):
        services.certificate_revoke(order_id=issued.pk, reason=6)
    with pytest.raises(CertificateOrderError, match="in force"):
        services.certificate_revoke(order_id=pending.pk, reason=0)

    statuses = set(CertificateOrder.objects.values_list("status", flat=True))
    assert statuses == {Status.PENDING, Status.ISSUED}


@pytest.mark.django_db
def test_the_crl_answers_get_only(client):
    assert client.post("/ca/intermediate.crl").status_code == 405
