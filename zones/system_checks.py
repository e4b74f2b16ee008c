"""``manage.py check`` reports wrong DNS settings before the first write or check needs them."""

from django.conf import settings
from django.core.checks import Error

from zones.errors import DnsWriteError
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
    return errors
