"""Helpers of the customer pages: other apps' values and messages in the page's language.

States are named once, with their translatable labels, in provisioning.states; other
apps word some messages in English, and the pages show them through these filters, which
look them up in the portal's catalogue (locale/<language>/LC_MESSAGES/django.po). A text
the catalogue does not know is shown as is.
"""

from django import template
from django.utils.translation import gettext, gettext_noop

from provisioning.states import DNS, PLATFORM

register = template.Library()

# Texts of other apps shown on the customer pages, for the `translated` filter.
OTHER_APPS_TEXTS = [
    # provisioning.rules.setup_choices_check, provisioning.services (errors.Refused)
    gettext_noop("Choose one of the offered sub-domains."),
    gettext_noop("Choose one of the offered addresses."),
    gettext_noop("DNS Assist needs the domain's zone to be managed on this account."),
    gettext_noop("This platform is already configured."),
    gettext_noop("The server name is not chosen yet: there is nothing to check."),
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
def step_label(label) -> str:
    """A guide step's label (provisioning.states.Step), in the page's language."""
    return str(label)


@register.filter
def translated(text) -> str:
    """A message worded by another app, in the page's language when the catalogue has it."""
    text = str(text)
    return gettext(text) if text else text
