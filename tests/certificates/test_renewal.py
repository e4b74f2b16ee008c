"""Lifetimes, the certificate's track, renewal by the internal CA, destruction of old keys."""

import threading
from datetime import timedelta

import pytest
from cryptography import x509
from django.db import connection
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from certificates import encryption, policy, selectors, services
from certificates.errors import CertificateOrderError
from certificates.models import CertificateOrder
from certificates.services import DcvOutcome
from outbox.encryption import encryption_keys_rotate
from tests.certificates.factories import CertificateOrderFactory

Status = CertificateOrder.Status


def _issued(**kwargs) -> CertificateOrder:
    """An order the internal CA issued after its email validation."""
    order = CertificateOrderFactory(**kwargs)
    code = services.dcv_code_issue(order=order)
    result = services.dcv_code_verify(order_id=order.pk, code=code)
    assert result.outcome == DcvOutcome.VALID
    return result.order


def _leaf(order: CertificateOrder) -> x509.Certificate:
    return x509.load_pem_x509_certificate(order.certificate_pem.encode())


def _reload(order: CertificateOrder) -> CertificateOrder:
    return CertificateOrder.objects.get(pk=order.pk)


@pytest.mark.django_db
def test_internal_ca_issues_for_the_maximum_in_force_less_a_day():
    order = _issued()

    expected = policy.certificate_lifetime(on=order.issued_at, configured=None)
    assert expected == policy.max_lifetime(on=order.issued_at) - timedelta(days=1)
    assert abs(order.not_after - order.issued_at - expected) < timedelta(seconds=5)
    assert _leaf(order).not_valid_after_utc == order.not_after
    assert order.validated_at == order.issued_at
    assert order.method == "email"


@pytest.mark.django_db
def test_certificate_lifetime_setting_makes_shorter_certificates(settings):
    settings.CERTIFICATE_LIFETIME = 120

    order = _issued()

    assert abs(order.not_after - order.issued_at - timedelta(seconds=120)) < timedelta(seconds=5)


@pytest.mark.django_db
def test_renewal_is_due_when_a_third_of_the_lifetime_is_left(settings):
    settings.CERTIFICATE_LIFETIME = 120
    assert selectors.renewal_due_at(order=CertificateOrderFactory()) is None

    order = _issued()

    due = selectors.renewal_due_at(order=order)
    assert abs(due - order.issued_at - timedelta(seconds=80.4)) < timedelta(seconds=1.5)
    settings.CERTIFICATE_RENEW_BEFORE_PERCENT = 50
    assert abs(selectors.renewal_due_at(order=order) - due + timedelta(seconds=20.4)) < timedelta(
        seconds=1.5
    )


@pytest.mark.django_db
def test_certificates_name_the_crl_url(settings):
    settings.PORTAL_BASE_URL = "https://portal.example.net/"

    order = _issued()

    points = _leaf(order).extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [name.value for point in points for name in point.full_name] == [
        "https://portal.example.net/ca/intermediate.crl"
    ]


@pytest.mark.django_db
def test_renewal_within_the_reuse_period_is_issued_at_once():
    previous = _issued()

    renewal = services.certificate_order_renew(previous_order_id=previous.pk)

    new, previous = renewal.order, _reload(previous)
    assert renewal.dcv_code is None
    assert (new.status, previous.status) == (Status.ISSUED, Status.SUPERSEDED)
    assert new.renewal_of_id == previous.pk
    assert (new.server_name, new.validation_email, new.method) == (
        previous.server_name,
        previous.validation_email,
        "email",
    )
    assert new.order_number != previous.order_number
    assert new.serial != previous.serial
    assert new.not_after >= previous.not_after  # X.509 counts whole seconds
    assert new.validated_at == previous.validated_at  # reused, not proven again
    assert _leaf(new).public_key() != _leaf(previous).public_key()
    assert new.csr_pem != previous.csr_pem
    assert encryption.decrypt(new.key_encrypted) != encryption.decrypt(previous.key_encrypted)
    # The history keeps both certificates whole.
    assert previous.certificate_pem and previous.key_encrypted


@pytest.mark.django_db
def test_renewal_past_the_reuse_period_awaits_a_new_email_validation(settings):
    settings.DCV_REUSE_PERIOD = 0
    previous = _issued()
    old_code_hash = previous.dcv_code_hash

    renewal = services.certificate_order_renew(previous_order_id=previous.pk)

    new = renewal.order
    assert new.status == Status.PENDING and not new.certificate_pem
    assert _reload(previous).status == Status.RENEWING
    assert renewal.dcv_code and new.dcv_code_hash not in ("", old_code_hash)
    assert new.dcv_code_expires_at > timezone.now()

    result = services.dcv_code_verify(order_id=new.pk, code=renewal.dcv_code)

    assert result.outcome == DcvOutcome.VALID
    assert (result.order.status, _reload(previous).status) == (Status.ISSUED, Status.SUPERSEDED)
    assert result.order.validated_at > previous.validated_at


@pytest.mark.django_db
def test_the_old_code_does_not_validate_the_renewal(settings):
    settings.DCV_REUSE_PERIOD = 0
    previous = CertificateOrderFactory()
    old_code = services.dcv_code_issue(order=previous)
    services.dcv_code_verify(order_id=previous.pk, code=old_code)

    new = services.certificate_order_renew(previous_order_id=previous.pk).order

    result = services.dcv_code_verify(order_id=new.pk, code=old_code)
    assert result.outcome == DcvOutcome.INVALID
    assert _reload(new).status == Status.PENDING


@pytest.mark.django_db
def test_renewal_asked_twice_makes_one_order_and_one_code(settings):
    settings.DCV_REUSE_PERIOD = 0
    previous = _issued()

    first = services.certificate_order_renew(previous_order_id=previous.pk)
    again = services.certificate_order_renew(previous_order_id=previous.pk)

    assert again.order.pk == first.order.pk
    assert again.dcv_code is None
    assert CertificateOrder.objects.filter(renewal_of=previous).count() == 1
    assert _reload(first.order).dcv_code_hash == first.order.dcv_code_hash  # code still valid


@pytest.mark.django_db
def test_an_order_not_issued_cannot_be_renewed():
    pending = CertificateOrderFactory()

    with pytest.raises(CertificateOrderError, match="issued"):
        services.certificate_order_renew(previous_order_id=pending.pk)

    assert CertificateOrder.objects.count() == 1


@pytest.mark.django_db
def test_renewal_by_dns_record_past_the_reuse_period_asks_for_a_new_value(settings):
    settings.DCV_REUSE_PERIOD = 0
    previous = CertificateOrderFactory(method="dns")
    services.dns_record_verify(
        order_id=previous.pk,
        txt_lookup=lambda name: [selectors.dns_validation_record(order=previous).value],
    )

    renewal = services.certificate_order_renew(previous_order_id=previous.pk)

    new = renewal.order
    assert (new.status, new.method, renewal.dcv_code) == (Status.PENDING, "dns", None)
    old_record = selectors.dns_validation_record(order=previous)
    new_record = selectors.dns_validation_record(order=new)
    assert new_record.name == old_record.name == f"_dnsauth.{previous.server_name}"
    assert new_record.value != old_record.value


@pytest.mark.django_db
def test_expiry_sweep_moves_certificates_along_their_track():
    soon, later, gone = _issued(), _issued(), _issued()
    now = timezone.now()
    CertificateOrder.objects.filter(pk=soon.pk).update(not_after=now + timedelta(days=13))
    CertificateOrder.objects.filter(pk=gone.pk).update(not_after=now - timedelta(seconds=1))

    assert services.certificate_orders_expiry_mark() == 2

    statuses = [_reload(order).status for order in (soon, later, gone)]
    assert statuses == [Status.EXPIRING, Status.ISSUED, Status.EXPIRED]
    assert services.certificate_orders_expiry_mark() == 0

    CertificateOrder.objects.filter(pk=soon.pk).update(not_after=now - timedelta(seconds=1))
    assert services.certificate_orders_expiry_mark() == 1
    assert _reload(soon).status == Status.EXPIRED


@pytest.mark.django_db
def test_a_renewal_waiting_for_the_customer_turns_expiring(settings):
    settings.DCV_REUSE_PERIOD = 0
    previous = _issued()
    renewal = services.certificate_order_renew(previous_order_id=previous.pk)
    CertificateOrder.objects.filter(pk=previous.pk).update(
        not_after=timezone.now() + timedelta(days=3)
    )

    services.certificate_orders_expiry_mark()

    assert _reload(previous).status == Status.EXPIRING
    # Validated late, the renewal still replaces it.
    services.dcv_code_verify(order_id=renewal.order.pk, code=renewal.dcv_code)
    assert _reload(previous).status == Status.SUPERSEDED


@pytest.mark.django_db
def test_keys_of_replaced_and_expired_certificates_are_destroyed():
    previous = _issued()
    current = services.certificate_order_renew(previous_order_id=previous.pk).order
    replaced_in_force = _issued()
    services.certificate_order_renew(previous_order_id=replaced_in_force.pk)
    CertificateOrder.objects.filter(pk=previous.pk).update(
        not_after=timezone.now() - timedelta(seconds=1)
    )

    assert services.certificate_keys_destroy_expired() == 1

    previous = _reload(previous)
    assert previous.key_encrypted == "" and previous.key_destroyed_at is not None
    assert previous.certificate_pem and previous.serial  # the row keeps the facts
    assert b"PRIVATE KEY" in encryption.decrypt(_reload(current).key_encrypted)
    assert _reload(replaced_in_force).key_encrypted  # replaced but not expired yet
    assert services.certificate_keys_destroy_expired() == 0
    # Rotation passes over the destroyed key.
    assert encryption_keys_rotate() == CertificateOrder.objects.count() - 1 + 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_renewals_of_one_certificate_make_one(settings):
    settings.DCV_REUSE_PERIOD = 0
    previous = _issued()
    renewals: list[services.Renewal] = []
    start = threading.Barrier(4)

    def renew() -> None:
        try:
            start.wait()
            renewals.append(services.certificate_order_renew(previous_order_id=previous.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=renew) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(renewals) == 4
    assert len({renewal.order.pk for renewal in renewals}) == 1
    assert len([renewal for renewal in renewals if renewal.dcv_code]) == 1
    assert CertificateOrder.objects.filter(renewal_of=previous).count() == 1


@pytest.mark.django_db
def test_the_track_moves_only_by_its_declared_transitions():
    pending = CertificateOrderFactory()

    with pytest.raises(AttributeError):
        pending.status = Status.ISSUED
    for move in (pending.start_renewal, pending.expire, pending.supersede, pending.revoke):
        with pytest.raises(TransitionNotAllowed):
            move()
    assert _reload(pending).status == Status.PENDING
