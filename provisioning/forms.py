from django import forms

from provisioning.models import Zone
from zones.names import InvalidDomainName, normalise_domain


class ZoneForm(forms.ModelForm):
    """A zone typed by an operator is read like a customer's domain: the same parser,
    stored in the same A-label form."""

    class Meta:
        model = Zone
        fields = ["name"]

    def clean_name(self) -> str:
        try:
            return normalise_domain(self.cleaned_data["name"])
        except InvalidDomainName as error:
            raise forms.ValidationError(str(error)) from None
