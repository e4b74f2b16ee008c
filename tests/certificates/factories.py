import factory

from certificates.models import CertificateOrder
from certificates.services import certificate_order_create


class CertificateOrderFactory(factory.Factory):
    """Orders made by the service, so each has a real key pair and CSR."""

    class Meta:
        model = CertificateOrder

    server_name = factory.Sequence(lambda n: f"exchange{n}.example.com")
    validation_email = factory.LazyAttribute(lambda o: f"admin@{o.server_name.split('.', 1)[1]}")
    order_number = factory.Sequence(lambda n: 1111111 + n)
    backend = "internal"

    @classmethod
    def _create(cls, model_class, **kwargs) -> CertificateOrder:
        return certificate_order_create(**kwargs)
