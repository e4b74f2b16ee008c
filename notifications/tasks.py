from celery import shared_task

from notifications import services
from notifications.models import Email
from outbox import owed


@shared_task(name=Email.task_name)
def send_email(email_id: int) -> None:
    services.email_send(email_id=email_id)


@shared_task(name="notifications.tasks.dispatch_due_emails")
def dispatch_due_emails() -> int:
    return owed.dispatch_due(Email)
