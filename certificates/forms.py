from django import forms
from django.forms.renderers import Jinja2

from certificates import dcv


class DcvCodeForm(forms.Form):
    """The code pasted on the validation page; cleaned to its normalised form.

    A malformed paste is refused here and does not count as an attempt: it cannot be
    a guess at the code. The service counts every well-formed wrong code."""

    # As the portal's customer forms: Django's Jinja2 widget templates, same HTML, faster.
    default_renderer = Jinja2()

    code = forms.CharField(
        label="Validation code",
        # Room for the dashes and spaces a paste brings along.
        max_length=dcv.CODE_LENGTH * 3,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "placeholder": dcv.dcv_code_display("X" * dcv.CODE_LENGTH),
            }
        ),
        help_text="Paste the code from the validation e-mail; dashes and spaces do not matter.",
    )

    def clean_code(self) -> str:
        try:
            return dcv.dcv_code_normalise(self.cleaned_data["code"])
        except dcv.DcvCodeError as error:
            raise forms.ValidationError(str(error), code="malformed") from None
