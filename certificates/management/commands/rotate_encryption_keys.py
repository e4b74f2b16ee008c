from django.core.management.base import BaseCommand

from certificates.services import encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored private key and DNS validation value with the first key of "
        "FIELD_ENCRYPTION_KEY. "
        "Run it after putting a new key first, then remove the old key."
    )

    def handle(self, *args, **options) -> None:
        count = encryption_keys_rotate()
        self.stdout.write(f"Re-encrypted {count} value(s) with the newest key.")
