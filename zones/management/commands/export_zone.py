from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from zones.models import EmbeddedZone
from zones.names import InvalidDomainName, normalise_domain
from zones.records import InvalidValue
from zones.zonefile import DEFAULT_NAMESERVERS, render_zone_file


class Command(BaseCommand):
    help = (
        "Print a zone of the portal's embedded DNS store as an RFC 1035 zone file, "
        "for a DNS server to load."
    )

    def add_arguments(self, parser):
        parser.add_argument("domain", help="the zone, e.g. example.com")
        parser.add_argument(
            "--nameserver",
            action="append",
            dest="nameservers",
            help="a name server of the zone, for its SOA and NS records (repeatable; "
            "default: localhost)",
        )

    def handle(self, *args, domain, nameservers, **options):
        try:
            zone = normalise_domain(domain)
        except InvalidDomainName as error:
            raise CommandError(f"“{domain}” is not a domain name: {error}") from None
        store = EmbeddedZone.objects.filter(name=zone).first()
        if store is None:
            raise CommandError(
                f"The portal's DNS store has no zone {zone}: a zone appears there when "
                "DNS Assist first writes a record into it."
            )
        try:
            text = render_zone_file(
                zone=zone,
                serial=store.serial,
                records=store.records.all(),
                default_ttl=settings.DNS_RECORD_TTL,
                nameservers=nameservers or DEFAULT_NAMESERVERS,
            )
        except InvalidValue as error:
            raise CommandError(str(error)) from None
        self.stdout.write(text, ending="")
