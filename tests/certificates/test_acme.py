"""ACME with DNS-01 against a real pebble, which resolves the challenge through a real BIND9."""

from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from certificates import encryption, services
from certificates.acme_client import AcmeError, DnsWriter
from certificates.errors import CertificateOrderError
from certificates.models import AcmeAccount, CertificateOrder
from harness.processes import free_port
from tests.certificates.factories import CertificateOrderFactory


@dataclass
class RecordingWriter:
    """Passes calls to the real writer (or drops set_txt, to make validation fail)."""

    writer: DnsWriter
    write: bool = True
    calls: list[tuple] = field(default_factory=list)

    def set_txt(self, *, zone: str, name: str, value: str, ttl: int) -> None:
        self.calls.append(("set", zone, name, value))
        if self.write:
            self.writer.set_txt(zone=zone, name=name, value=value, ttl=ttl)

    def delete_txt(self, *, zone: str, name: str, value: str) -> None:
        self.calls.append(("delete", zone, name, value))
        self.writer.delete_txt(zone=zone, name=name, value=value)


def _acme_order(server_name: str) -> CertificateOrder:
    return CertificateOrderFactory(server_name=server_name, backend="acme")


def _assert_issued_by_pebble(order: CertificateOrder, pebble) -> None:
    assert order.status == CertificateOrder.Status.ISSUED
    leaf = x509.load_pem_x509_certificate(order.certificate_pem.encode())
    intermediates = x509.load_pem_x509_certificates(order.chain_pem.encode())
    root = x509.load_pem_x509_certificate(pebble.root_pem().encode())
    leaf.verify_directly_issued_by(intermediates[0])
    intermediates[-1].verify_directly_issued_by(root)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [order.server_name]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert leaf.public_key() == x509.load_pem_x509_csr(order.csr_pem.encode()).public_key()
    assert order.serial == format(leaf.serial_number, "X")
    assert "Pebble Intermediate CA" in order.issuer
    assert order.not_after == leaf.not_valid_after_utc


@pytest.mark.django_db
def test_dns_assist_issues_the_certificate_and_removes_the_record(
    acme_settings, bind_server, dns_writer, server_name
):
    order = _acme_order(server_name)
    writer = RecordingWriter(dns_writer)

    issued = services.acme_certificate_obtain(
        order_id=order.pk, dns_writer=writer, zone=bind_server.zone
    )

    _assert_issued_by_pebble(issued, acme_settings)
    challenge = f"_acme-challenge.{server_name}"
    assert [call[:3] for call in writer.calls] == [
        ("set", "example.test", challenge),
        ("delete", "example.test", challenge),
    ]
    assert writer.calls[0][3] == writer.calls[1][3] == issued.acme_txt_value
    assert bind_server.served(challenge, "TXT") == set()
    account = AcmeAccount.objects.get()
    assert account.uri.startswith(acme_settings.directory_url.rsplit("/", 1)[0])
    assert b"PRIVATE KEY" in encryption.decrypt(account.key_encrypted)
    assert "PRIVATE KEY" not in account.key_encrypted


@pytest.mark.django_db
def test_account_is_registered_once_and_reused(acme_settings, dns_writer, server_name):
    for name in (server_name, f"webmail.{server_name}"):
        order = _acme_order(name)
        services.acme_certificate_obtain(
            order_id=order.pk, dns_writer=dns_writer, zone="example.test"
        )

    account = AcmeAccount.objects.get()
    assert set(CertificateOrder.objects.values_list("acme_account", flat=True)) == {account.pk}


@pytest.mark.django_db
def test_obtaining_twice_issues_once(acme_settings, bind_server, dns_writer, server_name):
    order = _acme_order(server_name)
    first = services.acme_certificate_obtain(
        order_id=order.pk, dns_writer=dns_writer, zone=bind_server.zone
    )
    writer = RecordingWriter(dns_writer)

    again = services.acme_certificate_obtain(
        order_id=order.pk, dns_writer=writer, zone=bind_server.zone
    )

    assert again.serial == first.serial
    assert writer.calls == []


@pytest.mark.django_db
def test_record_never_served_fails_for_good_and_is_cleaned_up(
    acme_settings, dns_writer, server_name
):
    order = _acme_order(server_name)
    writer = RecordingWriter(dns_writer, write=False)

    with pytest.raises(AcmeError) as raised:
        services.acme_certificate_obtain(order_id=order.pk, dns_writer=writer, zone="example.test")

    error = raised.value
    assert not error.transient
    assert error.message.startswith("The certificate authority could not validate the DNS record")
    assert server_name in error.message
    assert [call[0] for call in writer.calls] == ["set", "delete"]
    order.refresh_from_db()
    assert order.status == CertificateOrder.Status.FAILED
    assert order.last_error == error.message
    assert not order.certificate_pem


@pytest.mark.django_db
def test_manual_record_then_completion(acme_settings, dns_writer, server_name):
    order = _acme_order(server_name)

    record = services.acme_manual_challenge(order_id=order.pk)

    assert record.name == f"_acme-challenge.{server_name}"
    assert services.acme_manual_challenge(order_id=order.pk) == record  # stable until used
    # The customer adds the record to their zone.
    dns_writer.set_txt(zone="example.test", name=record.name, value=record.value, ttl=60)
    try:
        issued = services.acme_manual_complete(order_id=order.pk)
    finally:
        dns_writer.delete_txt(zone="example.test", name=record.name, value=record.value)

    _assert_issued_by_pebble(issued, acme_settings)
    with pytest.raises(CertificateOrderError, match="already issued"):
        services.acme_manual_challenge(order_id=order.pk)


@pytest.mark.django_db
def test_manual_completion_without_the_record_fails_and_a_new_record_is_offered(
    acme_settings, server_name
):
    order = _acme_order(server_name)
    first = services.acme_manual_challenge(order_id=order.pk)

    with pytest.raises(AcmeError) as raised:
        services.acme_manual_complete(order_id=order.pk)

    assert not raised.value.transient
    order.refresh_from_db()
    assert order.status == CertificateOrder.Status.FAILED
    # The CA's order is spent: asking again opens a new one, with a new value.
    second = services.acme_manual_challenge(order_id=order.pk)
    assert second.name == first.name
    assert second.value != first.value
    order.refresh_from_db()
    assert (order.status, order.last_error) == (CertificateOrder.Status.PENDING, "")
    assert order.acme_txt_value == second.value


@pytest.mark.django_db
def test_completion_needs_a_challenge_first(acme_settings, server_name):
    order = _acme_order(server_name)
    with pytest.raises(CertificateOrderError, match="ask for the TXT record first"):
        services.acme_manual_complete(order_id=order.pk)


@pytest.mark.django_db
def test_unreachable_ca_is_a_transient_error(settings, dns_writer, server_name):
    settings.ACME_DIRECTORY_URL = f"https://127.0.0.1:{free_port()}/dir"
    order = _acme_order(server_name)
    writer = RecordingWriter(dns_writer)

    with pytest.raises(AcmeError) as raised:
        services.acme_certificate_obtain(order_id=order.pk, dns_writer=writer, zone="example.test")

    assert raised.value.transient
    assert raised.value.message.startswith("Could not reach the certificate authority at https://")
    assert writer.calls == []
    order.refresh_from_db()
    assert order.status == CertificateOrder.Status.PENDING  # a retry may still succeed
    assert order.last_error == raised.value.message


@pytest.mark.django_db
def test_no_acme_directory_configured(settings, server_name):
    settings.ACME_DIRECTORY_URL = ""
    order = _acme_order(server_name)
    with pytest.raises(AcmeError, match="ACME_DIRECTORY_URL") as raised:
        services.acme_manual_challenge(order_id=order.pk)
    assert not raised.value.transient


@pytest.mark.django_db
def test_email_validated_orders_do_not_use_acme(acme_settings, server_name):
    order = CertificateOrderFactory(server_name=server_name, backend="internal")
    with pytest.raises(CertificateOrderError, match="validated by e-mail"):
        services.acme_manual_challenge(order_id=order.pk)
