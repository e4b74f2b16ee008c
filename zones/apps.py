from django.apps import AppConfig
from django.core import checks


class ZonesConfig(AppConfig):
    name = "zones"
    verbose_name = "DNS zones"

    def ready(self) -> None:
        from zones.system_checks import dns_settings

        checks.register(dns_settings, "dns")
