"""The sweep when the worker is behind (found by the load test: with every waiting row sent
again each OUTBOX_REDISPATCH_AFTER, a backlog longer than that fed itself with copies until
the worker did little else than drop them). A row is still sent again soon after its first
message (which may have been lost), then ever less often while it waits."""

from collections import defaultdict
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from outbox import owed
from provisioning.models import Job, Platform
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def test_rows_waiting_in_a_backlog_are_sent_again_ever_less_often(settings):
    settings.OUTBOX_REDISPATCH_AFTER = 3
    account = AccountFactory()
    start = timezone.now()
    for n in range(20):
        platform = Platform.objects.create(account=account, service=f"pex-q{n}", order_number=n)
        Job.objects.create(platform=platform, kind="deliver", due_at=start)

    sent = defaultdict(list)  # the seconds at which each row was sent
    with mock.patch.object(owed.timezone, "now") as now:
        for second in range(301):  # five minutes of sweeps, no worker taking anything
            now.return_value = start + timedelta(seconds=second)
            for pk in owed.take_due(Job):
                sent[pk].append(second)

    assert len(sent) == 20
    # Sent at once, again when 3 s have passed (that message may have been lost), then
    # twice as long after each time, at most 16 x 3 s apart: 10 sends in five minutes
    # where sending again every 3 s made 76.
    expected = [0, 4, 8, 16, 32, 64, 112, 160, 208, 256]
    assert all(times == expected for times in sent.values()), sent
