from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Provisioning"

    def ready(self) -> None:
        # Owed work is sent by task name: every process knows the tasks, so a process
        # that runs tasks eagerly (tests) runs them rather than sending a message.
        from provisioning import tasks  # noqa: F401
