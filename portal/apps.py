from django.apps import AppConfig
from django.core import checks


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Customer portal"

    def ready(self) -> None:
        from portal import checks as portal_checks

        checks.register(portal_checks.trusted_proxies, checks.Tags.security)
        checks.register(portal_checks.shared_rate_limit_counts, checks.Tags.security)
        checks.register(portal_checks.strong_tokens, checks.Tags.security)
