from django.utils import translation

from certificates.forms import DcvCodeForm


def test_form_gives_the_normalised_code():
    form = DcvCodeForm(data={"code": " abcde fghjk-mnpqr-stvwx-yz012 "})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["code"] == "ABCDEFGHJKMNPQRSTVWXYZ012"


def test_form_explains_a_malformed_code():
    form = DcvCodeForm(data={"code": "ABCDE-FGHJK"})
    assert not form.is_valid()
    assert form.errors["code"] == ["A validation code has 25 letters and digits; this one has 10."]


def test_form_requires_a_code():
    form = DcvCodeForm(data={"code": "   "})
    assert not form.is_valid()
    assert "code" in form.errors


def test_form_explains_a_malformed_code_in_french():
    with translation.override("fr"):
        form = DcvCodeForm(data={"code": "ABCDE-FGHJK"})
        assert not form.is_valid()
    assert form.errors["code"] == [
        "Un code de validation compte 25 lettres et chiffres\u00a0; celui-ci en compte 10."
    ]
