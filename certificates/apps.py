from django.apps import AppConfig
from django.core import checks


class CertificatesConfig(AppConfig):
    name = "certificates"
    verbose_name = "Certificates"

    def ready(self) -> None:
        from certificates.system_checks import certificate_settings

        checks.register(certificate_settings)
