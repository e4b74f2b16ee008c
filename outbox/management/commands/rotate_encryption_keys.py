from django.core.management.base import BaseCommand

from outbox.encryption import encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored encrypted value (private keys, DNS validation values, the "
        "secrets of emails not yet sent) with the first key of FIELD_ENCRYPTION_KEY. "
        "Run it after putting a new key first, then remove the old key."
    )

    def handle(self, *args, **options) -> None:
        count = encryption_keys_rotate()
        self.stdout.write(f"Re-encrypted {count} value(s) with the newest key.")
