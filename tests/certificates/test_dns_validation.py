"""Validation by DNS record (BR §3.2.2.4.7) for the internal CA, the record served by a real
BIND9 as the customer (or DNS Assist) would publish it."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from certificates import dcv, selectors, services
from certificates.errors import CertificateOrderError
from certificates.models import CertificateOrder
from certificates.services import DnsOutcome
from tests.certificates.factories import CertificateOrderFactory

Status = CertificateOrder.Status


def _dns_order(server_name: str) -> CertificateOrder:
    return CertificateOrderFactory(server_name=server_name, method="dns")


def _served(bind):
    """What the zone's server answers: the lookup the caller passes in."""
    return lambda name: bind.served(name, "TXT")


def test_the_value_carries_at_least_112_bits():
    values = {dcv.dns_token_generate() for _ in range(200)}
    assert len(values) == 200
    assert all(len(value) == 22 for value in values)  # 16 bytes in base64url: 128 bits


def test_the_value_is_found_among_the_served_strings_blanks_ignored():
    assert dcv.dns_token_found("abc", ["other", " abc "])
    assert not dcv.dns_token_found("abc", ["abcd", "ab", "é"])
    assert not dcv.dns_token_found("abc", [])


@pytest.mark.django_db
def test_the_record_is_named_and_its_value_not_stored_in_clear(server_name):
    order = _dns_order(server_name)

    record = selectors.dns_validation_record(order=order)

    assert record.name == f"_dnsauth.{server_name}"
    assert order.dns_token_expires_at <= timezone.now() + timedelta(days=30)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM certificates_certificateorder WHERE id = %s", [order.pk])
        row = cursor.fetchone()
    assert not any(record.value in str(column) for column in row)
    assert order.dcv_code_hash == ""  # no email validation


@pytest.mark.django_db
def test_the_certificate_is_issued_once_the_customer_serves_the_record(bind, server_name):
    order = _dns_order(server_name)
    record = selectors.dns_validation_record(order=order)

    missing = services.dns_record_verify(order_id=order.pk, txt_lookup=_served(bind))
    assert (missing.outcome, missing.found) == (DnsOutcome.NOT_FOUND, [])
    assert CertificateOrder.objects.get(pk=order.pk).status == Status.PENDING

    bind.set_records(record.name, "TXT", ['"some-other-value"'])
    wrong = services.dns_record_verify(order_id=order.pk, txt_lookup=_served(bind))
    assert (wrong.outcome, wrong.found) == (DnsOutcome.NOT_FOUND, ["some-other-value"])

    bind.set_records(record.name, "TXT", ['"some-other-value"', f'"{record.value}"'])
    found = services.dns_record_verify(order_id=order.pk, txt_lookup=_served(bind))

    assert found.outcome == DnsOutcome.ISSUED
    issued = found.order
    assert (issued.status, issued.method) == (Status.ISSUED, "dns")
    assert issued.validated_at == issued.issued_at
    assert issued.certificate_pem.startswith("-----BEGIN CERTIFICATE-----")
    # Checked again (a redelivered task): nothing issued twice.
    again = services.dns_record_verify(order_id=order.pk, txt_lookup=_served(bind))
    assert (again.outcome, again.order.serial) == (DnsOutcome.ISSUED, issued.serial)


@pytest.mark.django_db
def test_an_expired_value_is_not_looked_for_and_a_new_one_replaces_it(bind, server_name):
    order = _dns_order(server_name)
    old = selectors.dns_validation_record(order=order)
    bind.set_records(old.name, "TXT", [f'"{old.value}"'])
    CertificateOrder.objects.filter(pk=order.pk).update(dns_token_expires_at=timezone.now())

    def never(name):
        raise AssertionError("an expired value needs no DNS query")

    expired = services.dns_record_verify(order_id=order.pk, txt_lookup=never)
    assert expired.outcome == DnsOutcome.EXPIRED

    new = services.dns_token_issue(order_id=order.pk)

    assert (new.name, new.value != old.value) == (old.name, True)
    stale = services.dns_record_verify(order_id=order.pk, txt_lookup=_served(bind))
    assert stale.outcome == DnsOutcome.NOT_FOUND
    bind.set_records(new.name, "TXT", [f'"{new.value}"'])
    assert (
        services.dns_record_verify(order_id=order.pk, txt_lookup=_served(bind)).outcome
        == DnsOutcome.ISSUED
    )


@pytest.mark.django_db
def test_a_value_replaced_during_the_lookup_proves_nothing(server_name):
    order = _dns_order(server_name)
    value = selectors.dns_validation_record(order=order).value

    def lookup_while_the_customer_asks_a_new_value(name):
        services.dns_token_issue(order_id=order.pk)
        return [value]

    check = services.dns_record_verify(
        order_id=order.pk, txt_lookup=lookup_while_the_customer_asks_a_new_value
    )

    assert check.outcome == DnsOutcome.NOT_FOUND
    assert CertificateOrder.objects.get(pk=order.pk).status == Status.PENDING


@pytest.mark.django_db
def test_switching_methods_while_waiting(server_name):
    order = CertificateOrderFactory(server_name=server_name)
    code = services.dcv_code_issue(order=order)

    switched = services.validation_method_change(order_id=order.pk, method="dns")

    assert switched.method == "dns" and switched.dcv_code_hash == ""
    record = selectors.dns_validation_record(order=switched)
    with pytest.raises(CertificateOrderError, match="DNS record, not by e-mail"):
        services.dcv_code_verify(order_id=order.pk, code=code)

    back = services.validation_method_change(order_id=order.pk, method="email")

    assert back.method == "email" and selectors.dns_validation_record(order=back) is None
    with pytest.raises(CertificateOrderError, match="by e-mail, not through a DNS record"):
        services.dns_record_verify(order_id=order.pk, txt_lookup=lambda name: [record.value])
    new_code = services.dcv_code_issue(order=back)
    assert services.dcv_code_verify(order_id=order.pk, code=new_code).outcome == "valid"


@pytest.mark.django_db
def test_methods_the_backend_does_not_offer_are_refused(server_name):
    with pytest.raises(ValueError, match="acme CA does not validate by dns"):
        CertificateOrderFactory(server_name=server_name, backend="acme", method="dns")
    acme = CertificateOrderFactory(server_name=server_name, backend="acme")
    with pytest.raises(CertificateOrderError, match="e-mail or DNS record only"):
        services.validation_method_change(order_id=acme.pk, method="dns")
    issued = CertificateOrderFactory(server_name=server_name, method="dns")
    services.dns_record_verify(
        order_id=issued.pk,
        txt_lookup=lambda name: [selectors.dns_validation_record(order=issued).value],
    )
    with pytest.raises(CertificateOrderError, match="already issued"):
        services.validation_method_change(order_id=issued.pk, method="email")
