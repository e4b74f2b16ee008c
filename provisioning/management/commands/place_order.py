from django.core.management.base import BaseCommand, CommandError

from provisioning.models import Account
from provisioning.services import platform_order


class Command(BaseCommand):
    help = "Place an order of a Private Exchange platform for an account; prints the service name."

    def add_arguments(self, parser):
        parser.add_argument("nic", help="the account's NIC handle")

    def handle(self, *args, nic, **options):
        try:
            account = Account.objects.get(nic=nic.strip().lower())
        except Account.DoesNotExist:
            raise CommandError(f"No account with NIC handle {nic!r}.") from None
        platform = platform_order(account=account, actor="command")
        self.stdout.write(platform.service)
