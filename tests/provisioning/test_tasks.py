"""provisioning.tasks.run_job and outbox.owed.kept_here: the work a stage makes due at once
for its platform runs in the same task; what the task leaves is sent as usual. (Killing a
worker in the middle of such work: tests/faults/test_stages_run_here.py.)"""

from collections import Counter

import pytest
from celery.signals import task_prerun

from notifications.models import Email
from outbox import owed
from provisioning.models import Job, Platform
from provisioning.services import platform_order
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tasks_run():
    """Names of the tasks run (eagerly, after each commit), counted."""
    counted: Counter = Counter()

    def count(task=None, **kwargs) -> None:
        counted[task.name] += 1

    task_prerun.connect(count, weak=False)
    yield counted
    task_prerun.disconnect(count)


def test_the_delivery_task_sends_the_delivery_email_itself(mailbox, tasks_run):
    platform = platform_order(account=AccountFactory(language="en"), actor="test")

    [message] = mailbox.wait_for(1)
    assert "being delivered" in message["Subject"]
    email = Email.objects.get()
    assert (email.kind, email.status, email.attempts) == ("delivery", "done", 1)
    assert Job.objects.get(platform=platform).status == "done"
    assert Platform.objects.get(pk=platform.pk).state == "awaiting_setup"
    assert tasks_run == Counter({"provisioning.tasks.run_job": 1})


def test_work_kept_for_the_task_is_sent_when_the_task_leaves_it(mailbox, tasks_run):
    with owed.kept_here(lambda row: isinstance(row, Job)) as kept:
        platform = platform_order(account=AccountFactory(language="en"), actor="test")
        # Committed, kept, not sent: nothing ran.
        assert [row.kind for row in kept] == ["deliver"]
        job = Job.objects.get(platform=platform)
        assert (job.status, job.attempts) == ("pending", 0)
        assert job.dispatched_at is not None  # the sweep's "sent" mark, as for any message
        assert not tasks_run
    # The block ended with the row still there: sent then, and run.
    assert Platform.objects.get(pk=platform.pk).state == "awaiting_setup"
    assert Job.objects.get(platform=platform).status == "done"
    assert tasks_run["provisioning.tasks.run_job"] == 1
    mailbox.wait_for(1)
