"""The DCV email (templates/notifications/dcv, sent by the notifications app) and the
validation page (templates/certificates/dcv.html, served by the portal)."""

import datetime

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template.loader import render_to_string
from django.test import RequestFactory

from certificates import services
from certificates.forms import DcvCodeForm
from certificates.services import DcvOutcome, DcvResult
from notifications.services import render_email
from tests.certificates.factories import CertificateOrderFactory

EMAIL_CONTEXT = {
    "order_number": 1111111,
    "server_name": "exchange.votredomaine.com",
    "validation_email": "admin@votredomaine.com",
    "code": "7K2QD-9XH4M-AB3CD-EFGHJ-KMNPQ",
    "dcv_url": "https://portal.example/dcv/abc/",
    "expires_at": datetime.datetime(2026, 1, 31, 12, 0, tzinfo=datetime.UTC),
    "max_attempts": 5,
}


def test_email_body_has_the_code_in_groups_and_the_link():
    _, text, html = render_email(kind="dcv", language="en", context=EMAIL_CONTEXT)
    for body in (text, html):
        assert "7K2QD-9XH4M-AB3CD-EFGHJ-KMNPQ" in body
        assert "https://portal.example/dcv/abc/" in body
        assert "order #1111111" in body
        assert "exchange.votredomaine.com" in body
        assert "31 January 2026, 12:00 UTC" in body
        assert "After 5 wrong codes" in body


@pytest.mark.parametrize("language", ["en", "fr"])
def test_email_subject_is_the_seeds_in_every_language(language):
    """The customer looks for the guide's English subject, whatever the body's language."""
    subject, _, _ = render_email(kind="dcv", language=language, context=EMAIL_CONTEXT)
    assert subject == "ORDER #1111111 - Domain Control Validation for exchange.votredomaine.com"


def test_email_in_french():
    _, text, html = render_email(kind="dcv", language="fr", context=EMAIL_CONTEXT)
    assert '<html lang="fr">' in html
    for body in (text, html):
        assert "Votre code de validation" in body
        assert "7K2QD-9XH4M-AB3CD-EFGHJ-KMNPQ" in body
        assert "https://portal.example/dcv/abc/" in body
        assert "commande n° 1111111" in body
        assert "31 janvier 2026, 12:00 UTC" in body
        assert "Après 5 codes erronés" in body
        assert "Chaque nouveau code remplace le précédent." in body
    # The page's button keeps its English word, marked as English for screen readers.
    assert 'cliquez sur <strong lang="en">Next</strong>' in html


def _page(order, **context) -> str:
    request = RequestFactory().get("/dcv/")
    request.user = AnonymousUser()
    context.setdefault("form", DcvCodeForm())
    return render_to_string("certificates/dcv.html", {"order": order, **context}, request=request)


@pytest.fixture
def order(db):
    return CertificateOrderFactory(server_name="exchange.example.com", order_number=1111111)


def test_page_asks_for_the_code(order):
    html = _page(order)
    assert "Order #1111111" in html
    assert 'name="code"' in html
    assert ">Next</button>" in html
    assert "csrfmiddlewaretoken" in html
    assert 'id="close-window"' in html and "Close window" in html
    assert "/static/portal/dcv.js" in html  # which shows the button and closes the window
    assert 'href="/"' in html  # the plain way back when the window cannot close


@pytest.mark.parametrize(
    ("outcome", "attempts_left", "expected"),
    [
        (DcvOutcome.INVALID, 3, "This code is not valid. You have 3 attempts left."),
        (DcvOutcome.INVALID, 1, "You have 1 attempt left."),
        (DcvOutcome.LOCKED, 0, "Validation is locked after too many wrong codes."),
        (DcvOutcome.EXPIRED, 5, "This code is no longer valid"),
    ],
)
def test_page_explains_a_refused_code(order, outcome, attempts_left, expected):
    result = DcvResult(outcome=outcome, attempts_left=attempts_left, order=order)
    html = " ".join(_page(order, result=result, new_code_url="/dcv/new/").split())
    assert expected in html
    assert 'role="alert"' in html
    locked_out = outcome != DcvOutcome.INVALID
    assert ('name="code"' in html) is not locked_out
    assert ('action="/dcv/new/"' in html) is locked_out


def test_page_confirms_a_valid_code(order):
    result = services.dcv_code_verify(order_id=order.pk, code=services.dcv_code_issue(order=order))
    html = _page(result.order, result=result, close_url="/platforms/")
    assert "The code is valid" in html
    assert 'name="code"' not in html
    assert 'data-fallback="/platforms/"' in html


def test_page_shows_form_errors(order):
    form = DcvCodeForm(data={"code": "ABC"})
    form.is_valid()
    html = _page(order, form=form)
    assert "The code could not be read" in html
    assert "this one has 3" in html


def test_page_shows_errors_that_concern_no_field(order):
    form = DcvCodeForm(data={"code": "ABCDE-FGHJK-MNPQR-STVWX-YZ012"})
    form.is_valid()
    form.add_error(None, "This certificate is not waiting for an e-mail validation.")
    html = _page(order, form=form)
    assert "This certificate is not waiting for an e-mail validation." in html
    assert "The code could not be read" not in html
