"""The hourly sweep of the certificate's track, as beat sends it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from certificates import services
from certificates.models import CertificateOrder
from certificates.tasks import sweep_certificates
from portal.celery import app
from tests.certificates.factories import CertificateOrderFactory

Status = CertificateOrder.Status


@pytest.mark.django_db
def test_the_sweep_marks_expiry_and_destroys_keys_of_replaced_certificates():
    replaced = CertificateOrderFactory()
    services.dcv_code_verify(order_id=replaced.pk, code=services.dcv_code_issue(order=replaced))
    current = services.certificate_order_renew(previous_order_id=replaced.pk).order
    CertificateOrder.objects.filter(pk=replaced.pk).update(not_after=timezone.now())
    CertificateOrder.objects.filter(pk=current.pk).update(
        not_after=timezone.now() + timedelta(days=2)
    )

    assert sweep_certificates.delay().get() == {"marked": 1, "keys_destroyed": 1}

    replaced, current = (CertificateOrder.objects.get(pk=o.pk) for o in (replaced, current))
    assert (replaced.status, replaced.key_encrypted) == (Status.SUPERSEDED, "")
    assert (current.status, bool(current.key_encrypted)) == (Status.EXPIRING, True)
    assert sweep_certificates.delay().get() == {"marked": 0, "keys_destroyed": 0}


def test_beat_sends_the_sweep_every_hour():
    entry = app.conf.beat_schedule["sweep-certificates"]
    assert (entry["task"], entry["schedule"]) == (sweep_certificates.name, 3600)
