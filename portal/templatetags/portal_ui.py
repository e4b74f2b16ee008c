"""Helpers of the customer pages: other apps' values and messages in the page's language.

The provisioning and certificates apps name states and word some messages in English; the
pages show them through these filters, which look them up in the portal's catalogue
(locale/<language>/LC_MESSAGES/django.po). A text the catalogue does not know is shown as is.
"""

import math

from django import template
from django.utils.translation import gettext, gettext_noop, ngettext, pgettext_lazy

register = template.Library()

PLATFORM_STATES = {
    "ordered": pgettext_lazy("platform state", "Ordered"),
    "awaiting_setup": pgettext_lazy("platform state", "Awaiting setup"),
    "configured": pgettext_lazy("platform state", "Configured"),
    "certificate_pending": pgettext_lazy("platform state", "Certificate pending"),
    "certificate_issued": pgettext_lazy("platform state", "Certificate issued"),
    "finalising": pgettext_lazy("platform state", "Finalising"),
    "ready": pgettext_lazy("platform state", "Ready"),
    "failed": pgettext_lazy("platform state", "Failed"),
    "cancelled": pgettext_lazy("platform state", "Cancelled"),
}

DNS_STATES = {
    "pending": pgettext_lazy("DNS state", "Pending"),
    "assisted": pgettext_lazy("DNS state", "Written by DNS Assist"),
    "instructions_sent": pgettext_lazy("DNS state", "Instructions sent"),
    "verified": pgettext_lazy("DNS state", "Verified"),
    "mismatch": pgettext_lazy("DNS state", "Mismatch"),
    "error": pgettext_lazy("DNS state", "Error"),
}

# provisioning.models.GUIDE_STEPS, the seed guide's steps.
GUIDE_STEPS = {
    "Delivery": pgettext_lazy("guide step", "Delivery"),
    "Initialisation": pgettext_lazy("guide step", "Initialisation"),
    "DNS": pgettext_lazy("guide step", "DNS"),
    "SSL certificate": pgettext_lazy("guide step", "SSL certificate"),
    "Finalisation": pgettext_lazy("guide step", "Finalisation"),
}

# Texts of other apps shown on the customer pages, for the `translated` filter.
OTHER_APPS_TEXTS = [
    # provisioning.services.SetupRefused
    gettext_noop("Choose one of the offered sub-domains."),
    gettext_noop("Choose one of the offered addresses."),
    gettext_noop("DNS Assist needs the domain's zone to be managed on this account."),
    gettext_noop("This platform is already configured."),
    # certificates.forms.DcvCodeForm (certificates.dcv translates its own messages)
    gettext_noop("Validation code"),
    gettext_noop("Paste the code from the validation e-mail; dashes and spaces do not matter."),
]


@register.filter
def state_label(state: str) -> str:
    """A platform state (its stored value) in words."""
    return PLATFORM_STATES.get(state, state)


@register.filter
def dns_state_label(state: str) -> str:
    """A DNS track state (its stored value) in words."""
    return DNS_STATES.get(state, state)


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
def step_label(label: str) -> str:
    """One of the guide's step names, as provisioning.models.GUIDE_STEPS gives it."""
    return GUIDE_STEPS.get(label, label)


@register.filter
def translated(text) -> str:
    """A message worded by another app, in the page's language when the catalogue has it."""
    text = str(text)
    return gettext(text) if text else text
