from celery import shared_task

from notifications import services
from notifications.models import Email
from outbox import owed

# The sweep's due emails go out in batches of at most this many, each batch over one SMTP
# connection; several batches share the worker's processes.
SEND_BATCH_SIZE = 20


@shared_task(name=Email.task_name)
def send_email(email_id: int) -> None:
    services.email_send(email_id=email_id)


@shared_task(name="notifications.tasks.send_emails")
def send_emails(email_ids: list[int]) -> None:
    """A batch of owed emails over one SMTP connection; those not tried because the server
    could not be reached go back to one task each (as the sweep would send them)."""
    for email_id in services.emails_send(email_ids=email_ids):
        send_email.delay(email_id)


@shared_task(name="notifications.tasks.dispatch_due_emails")
def dispatch_due_emails() -> int:
    """Beat's sweep of the email outbox: the rows owed now (owed.take_due, the same rules
    as every outbox), sent in batches; one alone goes as its own task."""
    ids = owed.take_due(Email)
    for start in range(0, len(ids), SEND_BATCH_SIZE):
        batch = ids[start : start + SEND_BATCH_SIZE]
        if len(batch) == 1:
            send_email.delay(batch[0])
        else:
            send_emails.delay(batch)
    return len(ids)
