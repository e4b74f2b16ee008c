from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Emails are sent by task name: see provisioning.apps.
        from notifications import tasks  # noqa: F401
