from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Provisioning"

    def ready(self) -> None:
        # Owed work is sent by task name: every process knows the tasks, so a process
        # that runs tasks eagerly (tests) runs them rather than sending a message.
        from certificates.services import encrypted_field_register
        from provisioning import tasks  # noqa: F401
        from provisioning.models import DkimKey

        # The DKIM private keys are rotated with the certificates' (rotate_encryption_keys).
        encrypted_field_register(DkimKey, "private_key_encrypted")
