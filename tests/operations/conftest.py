import itertools
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from certificates.models import CertificateOrder
from notifications.models import Email
from provisioning.models import Job, JobKind, Platform
from tests.factories import AccountFactory

_numbers = itertools.count(1)


@pytest.fixture
def fleet(db):
    """Makes rows as the portal leaves them, in any state, without running the pipeline."""
    return Fleet()


class Fleet:
    def __init__(self) -> None:
        self.account = AccountFactory()

    def platform(self, state="ordered", *, dns_state="pending", since=None) -> Platform:
        n = next(_numbers)
        platform = Platform.objects.create(
            account=self.account, service=f"pe-ops-{n}", order_number=700000 + n
        )
        Platform.objects.filter(pk=platform.pk).update(
            state=state, dns_state=dns_state, state_changed_at=since or timezone.now()
        )
        platform.refresh_from_db()
        return platform

    def job(self, platform, *, status="pending", due_in=0, last_error="") -> Job:
        return Job.objects.create(
            platform=platform,
            kind=JobKind.values[next(_numbers) % len(JobKind.values)],
            status=status,
            due_at=timezone.now() + timedelta(seconds=due_in),
            last_error=last_error,
        )

    def email(self, platform, *, status="pending", due_in=0, last_error="") -> Email:
        n = next(_numbers)
        return Email.objects.create(
            target_type=ContentType.objects.get_for_model(Platform),
            target_id=platform.pk,
            kind=f"kind-{n}",
            recipient="someone@customer.example",
            language="en",
            subject="s",
            body_text="t",
            body_html="h",
            message_id=f"<{n}@ops.test>",
            status=status,
            due_at=timezone.now() + timedelta(seconds=due_in),
            last_error=last_error,
        )

    def certificate(self, name, *, status="issued", expires_in_days=None, age_days=60):
        now = timezone.now()
        return CertificateOrder.objects.create(
            server_name=name,
            validation_email=f"admin@{name}",
            order_number=next(_numbers),
            backend="internal",
            key_type="rsa2048",
            key_encrypted="-",
            csr_pem="-",
            status=status,
            not_after=None if expires_in_days is None else now + timedelta(days=expires_in_days),
            created_at=now - timedelta(days=age_days),
        )
