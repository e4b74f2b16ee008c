from django import forms
from django.conf import settings
from django.forms.renderers import Jinja2
from django.utils.translation import gettext, gettext_lazy

from provisioning.errors import Refused
from provisioning.models import Platform
from provisioning.rules import (
    VALIDATION_LOCAL_PARTS,
    domain_choices_check,
    domain_mode_check,
    setup_choices_check,
    validation_addresses,
)
from provisioning.selectors import authoritative_domains_elsewhere, domain_held, setup_facts
from zones.names import InvalidDomainName, display_domain, normalise_domain

# Django's Jinja2 copies of its widget templates render the same HTML faster than the
# template language: the setup page's CPU went from about 12.7 to 9.5 ms a request.
CUSTOMER_FORM_RENDERER = Jinja2()

# Longest text accepted in the domain field: a 253-character name in U-labels can be
# longer than its A-label form; the parser then checks the real limits.
DOMAIN_INPUT_MAX_LENGTH = 1024


class SetupForm(forms.Form):
    """Step 2 of the guide: server name, validation address, DNS Assist."""

    default_renderer = CUSTOMER_FORM_RENDERER

    service = forms.CharField(widget=forms.HiddenInput)
    subdomain = forms.ChoiceField(label=gettext_lazy("Sub-domain"))
    domain = forms.CharField(
        label=gettext_lazy("Domain"),
        max_length=DOMAIN_INPUT_MAX_LENGTH,
        help_text=gettext_lazy("The domain to use for your server, for example example.com."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "example.com"}
        ),
    )
    validation_email = forms.ChoiceField(
        label=gettext_lazy("Validation e-mail"),
        help_text=gettext_lazy(
            "The certificate authority sends the SSL validation code to this address: "
            "it must exist and you must be able to read it."
        ),
    )
    validation_method = forms.ChoiceField(
        label=gettext_lazy("Certificate validation"),
        choices=[
            ("email", gettext_lazy("By e-mail: a code sent to the validation address")),
            ("dns", gettext_lazy("By DNS record: a TXT record in the domain's zone")),
        ],
        initial="email",
        required=False,
        help_text=gettext_lazy(
            "With DNS Assist we write the TXT record ourselves; otherwise your platform's "
            "page shows the record to add."
        ),
    )
    dns_assist = forms.BooleanField(
        label=gettext_lazy("DNS Assist"),
        required=False,
        help_text=gettext_lazy(
            "Let us write the DNS records of your server name in your zone. The domain's "
            "zone must be managed on this account; otherwise we email you the records to add."
        ),
    )

    def __init__(self, *args, platform: Platform, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.platform = platform
        self.fields["service"].initial = platform.service
        self.fields["subdomain"].choices = [(s, s) for s in settings.SERVER_SUBDOMAINS]
        typed = self._typed_domain()
        suffix = display_domain(typed) if typed else "…"
        self.fields["validation_email"].choices = [
            (local, f"{local}@{suffix}") for local in VALIDATION_LOCAL_PARTS
        ]
        # The zones and the typed domain's holders, in one query (clean_domain reads it).
        self.typed = typed
        self.facts = setup_facts(platform, typed)
        self.managed_zones, self.foreign_zones = self.facts.own_zones, self.facts.foreign_zones

    def _typed_domain(self) -> str:
        try:
            return normalise_domain(self.data.get("domain", "")) if self.is_bound else ""
        except InvalidDomainName:
            return ""

    def clean_service(self) -> str:
        if self.cleaned_data["service"] != self.platform.service:
            raise forms.ValidationError(
                gettext("This form belongs to another platform. Reload the page and try again.")
            )
        return self.cleaned_data["service"]

    def clean_validation_method(self) -> str:
        return self.cleaned_data["validation_method"] or "email"

    def clean_domain(self) -> str:
        try:
            domain = normalise_domain(self.cleaned_data["domain"])
        except InvalidDomainName as error:
            raise forms.ValidationError(str(error)) from None
        if domain == self.typed:
            held = self.facts.held
        else:
            held = domain_held(domain, excluding=self.platform)
        if held:
            raise forms.ValidationError(gettext("This domain is already used by another platform."))
        return domain

    def clean(self) -> dict:
        data = super().clean()
        domain, subdomain = data.get("domain"), data.get("subdomain")
        local = data.get("validation_email")
        if not (domain and subdomain):
            return data
        # The service's own check, read against the zones read for the page; the service
        # checks again under its lock.
        try:
            choices = setup_choices_check(
                subdomain=subdomain,
                domain=domain,
                validation_email=f"{local}@{domain}" if local else None,
                dns_assist=data.get("dns_assist", False),
                offered_subdomains=settings.SERVER_SUBDOMAINS,
                managed_zones=self.managed_zones,
                foreign_zones=self.foreign_zones,
            )
        except Refused as refusal:
            self.add_error(refusal.field, self._refusal_words(refusal))
            return data
        data["server_name"] = choices.server_name
        if local:
            data["validation_email"] = choices.validation_email
        return data

    def _refusal_words(self, refusal: Refused) -> str:
        if refusal.field == "dns_assist":  # the page also says which zones would do
            return gettext(
                "DNS Assist is only available for domains whose zone is managed on "
                "this account (%(zones)s). Untick it: we will email you the records "
                "to add."
            ) % {"zones": self._zones_text()}
        return gettext(refusal.message)

    def _zones_text(self) -> str:
        if not self.managed_zones:
            return gettext("this account manages no zone")
        return gettext("managed: %(zones)s") % {
            "zones": ", ".join(display_domain(z) for z in self.managed_zones)
        }


class ValidationMethodForm(forms.Form):
    """Switch how the certificate waiting for validation is validated."""

    default_renderer = CUSTOMER_FORM_RENDERER

    validation_method = forms.ChoiceField(
        label=gettext_lazy("Validate the certificate"),
        choices=[
            ("email", gettext_lazy("By e-mail")),
            ("dns", gettext_lazy("By DNS record")),
        ],
    )


class DcvResendForm(forms.Form):
    """Send the validation email again, to the same or another offered address."""

    default_renderer = CUSTOMER_FORM_RENDERER

    validation_email = forms.ChoiceField(
        label=gettext_lazy("Send the validation e-mail to"), required=False
    )

    def __init__(self, *args, platform: Platform, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        domain = platform.domain
        self.fields["validation_email"].choices = [
            (address, f"{local}@{display_domain(domain)}")
            for local, address in zip(
                VALIDATION_LOCAL_PARTS, validation_addresses(domain), strict=True
            )
        ]
        self.fields["validation_email"].initial = platform.validation_email


class DomainModeForm(forms.Form):
    """A mail domain's mode, and the other server's host name when the domain is shared."""

    default_renderer = CUSTOMER_FORM_RENDERER

    mode = forms.ChoiceField(
        label=gettext_lazy("Mode"),
        widget=forms.RadioSelect,
        choices=[
            (
                "authoritative",
                gettext_lazy(
                    "Authoritative: this platform is the only mail system of the domain; "
                    "mail to unknown addresses is refused"
                ),
            ),
            (
                "non_authoritative",
                gettext_lazy(
                    "Non-authoritative: the domain is shared with another mail server, "
                    "which receives the mail of addresses not on this platform"
                ),
            ),
        ],
        initial="authoritative",
    )
    relay_host = forms.CharField(
        label=gettext_lazy("Other mail server"),
        required=False,
        max_length=DOMAIN_INPUT_MAX_LENGTH,
        help_text=gettext_lazy("Its host name, for example mx.other.example (shared mode)."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean(self) -> dict:
        data = super().clean()
        if "mode" in data:
            try:
                data["mode"], data["relay_host"] = domain_mode_check(
                    mode=data["mode"], relay_host=data.get("relay_host", "")
                )
            except Refused as refusal:
                self.add_error(refusal.field, gettext(refusal.message))
        return data


class DomainForm(DomainModeForm):
    """Add a mail domain to a ready platform: a zone of the account or any name typed."""

    domain = forms.CharField(
        label=gettext_lazy("Domain"),
        max_length=DOMAIN_INPUT_MAX_LENGTH,
        help_text=gettext_lazy(
            "One of your zones from the list, a sub-domain of one, or any other domain "
            "(you will then prove that it is yours with a DNS record)."
        ),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "placeholder": "example.com",
                "list": "account-zones",
            }
        ),
    )
    dns_assist = forms.BooleanField(
        label=gettext_lazy("DNS Assist"),
        required=False,
        help_text=gettext_lazy(
            "Let us write the mail records in your zone (only for domains inside a zone "
            "managed on this account)."
        ),
    )
    field_order = ["domain", "mode", "relay_host", "dns_assist"]

    def __init__(self, *args, platform: Platform, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.platform = platform
        self.managed_zones = list(platform.account.zones.values_list("name", flat=True))

    def clean_domain(self) -> str:
        try:
            return normalise_domain(self.cleaned_data["domain"])
        except InvalidDomainName as error:
            raise forms.ValidationError(str(error)) from None

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        try:
            choices = domain_choices_check(
                name=data["domain"],
                mode=data["mode"],
                relay_host=data["relay_host"],
                dns_assist=data.get("dns_assist", False),
                managed_zones=self.managed_zones,
                on_platform=self.platform.domains.filter(removed_at=None).values_list(
                    "name", flat=True
                ),
                authoritative_elsewhere=authoritative_domains_elsewhere(
                    self.platform, data["domain"]
                ),
                limit=settings.PLATFORM_MAX_DOMAINS,
            )
        except Refused as refusal:
            self.add_error(refusal.field, gettext(refusal.message))
            return data
        data["domain"] = choices.name
        return data
