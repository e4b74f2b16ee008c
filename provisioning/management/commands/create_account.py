from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import IntegrityError

from provisioning.models import Account
from provisioning.services import account_create
from zones.names import InvalidDomainName, normalise_domain


class Command(BaseCommand):
    help = "Create a customer account, its login user (username = NIC) and the zones it manages."

    def add_arguments(self, parser):
        parser.add_argument("nic", help="NIC handle, e.g. xx-11111-ovh")
        parser.add_argument("--email", required=True, help="the account's reference e-mail")
        parser.add_argument("--password", required=True)
        parser.add_argument(
            "--zone", action="append", default=[], dest="zones", help="a managed DNS zone"
        )
        parser.add_argument("--language", choices=["fr", "en"], default="fr")

    def handle(self, *args, nic, email, password, zones, language, **options):
        nic = nic.strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"--email: {email!r} is not a valid e-mail address.") from None
        try:
            zones = [normalise_domain(zone) for zone in zones]
        except InvalidDomainName as error:
            raise CommandError(f"--zone: {error}") from None
        if Account.objects.filter(nic=nic).exists():
            raise CommandError(f"An account {nic} already exists.")
        try:
            # As the login user will be: the validators compare the password with its name.
            validate_password(password, user=get_user_model()(username=nic, email=email))
        except ValidationError as error:
            raise CommandError("--password: " + " ".join(error.messages)) from None
        try:
            account = account_create(
                nic=nic, email=email, password=password, language=language, zones=zones
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        except IntegrityError as error:
            raise CommandError(f"Could not create the account: {error}") from None
        zone_text = ", ".join(zones) if zones else "no zone"
        self.stdout.write(
            f"Account {account.nic} created ({account.email}, {language}, {zone_text})."
        )
