from celery import shared_task

from notifications import outbox, services
from notifications.models import Email


@shared_task(name="notifications.tasks.send_email")
def send_email(email_id: int) -> None:
    services.email_send(email_id=email_id)


@shared_task(name="notifications.tasks.dispatch_due_emails")
def dispatch_due_emails() -> int:
    ids = outbox.take_due(Email)
    for email_id in ids:
        send_email.delay(email_id)
    return len(ids)
