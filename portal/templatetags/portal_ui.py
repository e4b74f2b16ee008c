"""Helpers of the customer pages: other apps' values and messages in the page's language.

States are named once, with their translatable labels, in provisioning.states; other
apps word some messages in English, and the pages show them through these filters, which
look them up in the portal's catalogue (locale/<language>/LC_MESSAGES/django.po). A text
the catalogue does not know is shown as is.
"""

import math

from django import template
from django.urls import reverse
from django.utils.translation import gettext, gettext_noop, ngettext

from provisioning import links
from provisioning.states import DNS, DOMAIN, PLATFORM
from zones.names import display_domain as _display_domain

register = template.Library()

# Texts of other apps shown on the customer pages, for the `translated` filter.
OTHER_APPS_TEXTS = [
    # provisioning.rules.setup_choices_check, provisioning.services (errors.Refused)
    gettext_noop("Choose one of the offered sub-domains."),
    gettext_noop("Choose one of the offered addresses."),
    gettext_noop("DNS Assist needs the domain's zone to be managed on this account."),
    gettext_noop("This platform is already configured."),
    gettext_noop("The server name is not chosen yet: there is nothing to check."),
    gettext_noop("This certificate is not waiting for an e-mail validation."),
    gettext_noop(
        "Another platform proved control of this domain first, and now holds it: choose "
        "another name for your server."
    ),
    gettext_noop(
        "The DNS zone of this domain is managed by another customer account: choose a domain "
        "whose zone you manage, or that no account manages."
    ),
    # provisioning.services.validation (the switch of validation method)
    gettext_noop("The certificate is not waiting for validation."),
    gettext_noop("This is already the validation method."),
    gettext_noop("This certificate authority validates through DNS only."),
    # certificates.forms.DcvCodeForm (certificates.dcv translates its own messages)
    gettext_noop("Validation code"),
    gettext_noop("Paste the code from the validation e-mail; dashes and spaces do not matter."),
]


@register.filter
def state_label(state: str) -> str:
    """A platform state (its stored value) in words."""
    return PLATFORM.label(state)


@register.filter
def dns_state_label(state: str) -> str:
    """A DNS track state (its stored value) in words."""
    return DNS.label(state)


@register.filter
def domain_state_label(state: str) -> str:
    """A mail domain's state (its stored value) in words."""
    return DOMAIN.label(state)


@register.filter
def dns_label(platform) -> str:
    """The platform's DNS track in words: a mismatch where the last check found nothing
    at all is records not created yet, or not seen yet, rather than wrong ones."""
    found_nothing = platform.dns_records and not any(r["found"] for r in platform.dns_records)
    if platform.dns_state == "mismatch" and found_nothing:
        return gettext("Not found yet")
    return dns_state_label(platform.dns_state)


@register.filter
def duration(seconds) -> str:
    """A duration in words: minutes under an hour (never "0 hours"), else hours, or days."""
    seconds = max(0, int(seconds))
    if seconds < 3600:
        minutes = max(1, math.ceil(seconds / 60))
        return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    if seconds % 86400 == 0:
        days = seconds // 86400
        return ngettext("%(count)d day", "%(count)d days", days) % {"count": days}
    hours, rest = divmod(seconds, 3600)
    words = ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    minutes = math.ceil(rest / 60)
    if minutes:
        words += " " + ngettext("%(count)d minute", "%(count)d minutes", minutes) % {
            "count": minutes
        }
    return words


@register.filter
def step_label(label) -> str:
    """A guide step's label (provisioning.states.Step), in the page's language."""
    return str(label)


@register.filter
def translated(text) -> str:
    """A message worded by another app, in the page's language when the catalogue has it."""
    text = str(text)
    return gettext(text) if text else text


@register.filter
def display_domain(name: str) -> str:
    """A domain stored as A-labels, shown as U-labels."""
    return _display_domain(name)


@register.filter
def setup_path(platform) -> str:
    """The platform's setup page (its signed link), for a customer already logged in."""
    return reverse("setup", args=[links.setup_token(platform)])
