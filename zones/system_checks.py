"""``manage.py check`` reports wrong DNS settings before the first write or check needs them."""

from django.conf import settings
from django.core.checks import Error

from zones.errors import DnsWriteError
from zones.mail import parse_mail_exchangers
from zones.names import InvalidDomainName, normalise_domain
from zones.records import InvalidValue, parse_server_address
from zones.writers import get_writer


def dns_settings(app_configs, **kwargs) -> list[Error]:
    errors = []
    try:
        get_writer()
    except DnsWriteError as error:
        errors.append(Error(error.message, id="zones.E001"))
    for text in settings.DNS_CHECK_RESOLVERS:
        try:
            parse_server_address(text)
        except InvalidValue as error:
            errors.append(Error(f"DNS_CHECK_RESOLVERS: {error}", id="zones.E002"))
    return errors + _mail_domain_settings()


def _mail_domain_settings() -> list[Error]:
    errors = []
    try:
        # Only the setting is checked here; its empty default stands for each platform's name.
        parse_mail_exchangers(settings.MAIL_EXCHANGERS, server_name="platform.example")
    except InvalidValue as error:
        errors.append(Error(str(error), id="zones.E003"))
    try:
        normalise_domain(settings.DOMAIN_CHECK_TARGET)
    except InvalidDomainName as error:
        errors.append(
            Error(
                f"DOMAIN_CHECK_TARGET “{settings.DOMAIN_CHECK_TARGET}” is not a host name: {error}",
                id="zones.E004",
            )
        )
    if settings.PLATFORM_MAX_DOMAINS < 1:
        errors.append(Error("PLATFORM_MAX_DOMAINS must be at least 1.", id="zones.E005"))
    return errors
