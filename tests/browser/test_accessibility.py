"""Accessibility in Chromium, beyond pages.check_page: axe-core finds no serious or critical
problem on any customer page in either language; the focus ring and the controls' borders
reach WCAG 1.4.11's 3:1; a copied record is announced; a wrong code marks its field invalid;
the certificate authority's English words are marked English on French pages."""

import re
import time
from unittest import mock

import pytest
from playwright.sync_api import Page, expect

from provisioning import links
from tests.browser.conftest import TIMEOUT_MS, Work, link
from tests.browser.pages import check_accessibility, check_page, contrast, control_colours
from tests.conftest import text_body
from tests.factories import PASSWORD, AccountFactory
from tests.helpers import delivered_platform

expect.set_options(timeout=TIMEOUT_MS)

ZONE = "example.test"  # served by BIND9; the account does not manage it here (no DNS Assist)
WRONG_CODE = "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"  # well formed, not the code

TEXTS = {
    "en": {
        "username": "Customer account (NIC handle)",
        "password": "Password",
        "login": "Log in",
        "domain": "Domain",
        "email": "Validation e-mail",
        "validate": "Validate",
        "code": "Validation code",
        "invalid": "This code is not valid.",
        "valid": "The code is valid",
    },
    "fr": {
        "username": "Identifiant client (NIC handle)",
        "password": "Mot de passe",
        "login": "Se connecter",
        "domain": "Nom de domaine",
        "email": "E-mail",
        "validate": "Valider",
        "code": "Code de validation",
        "invalid": "Ce code n'est pas valide.",
        "valid": "Le code est valide",
    },
}


def checked(page: Page, language: str) -> None:
    check_page(page, language)
    check_accessibility(page)


def log_in(page: Page, text: dict, nic: str, password: str = PASSWORD) -> None:
    page.get_by_label(text["username"]).fill(nic)
    page.get_by_label(text["password"], exact=True).fill(password)
    page.get_by_role("button", name=text["login"]).click()


@pytest.mark.parametrize("language", ["en", "fr"])
def test_customer_pages_have_no_serious_problem(portal, in_process_worker: Work, screen, language):
    text = TEXTS[language]
    s = screen(language=language, axe=True)
    page = s.page
    platform = delivered_platform(AccountFactory(language=language))

    with mock.patch("django.core.signing.time.time", return_value=time.time() - 31 * 86400):
        expired = links.setup_token(platform)
    page.goto(f"{portal.url}/setup/{expired}/")
    checked(page, language)
    s.shot("link-expired")

    page.goto(links.setup_url(platform))
    checked(page, language)
    log_in(page, text, platform.account.nic, "not the password")
    expect(page.locator("#error-summary")).to_be_visible()
    checked(page, language)
    s.shot("login-refused")
    log_in(page, text, platform.account.nic)

    page.get_by_role("button", name=text["validate"]).click()
    expect(page.locator("#error-summary")).to_be_visible()
    checked(page, language)
    s.shot("setup-refused")
    page.get_by_label(text["domain"], exact=True).fill(ZONE)
    page.get_by_label(text["email"], exact=True).select_option("hostmaster")
    page.get_by_role("button", name=text["validate"]).click()
    expect(page.locator(".success")).to_be_visible()
    checked(page, language)  # the DNS table, the validation help and the resend form
    s.shot("configured")

    dcv = in_process_worker.email("Domain Control Validation")
    page.goto(link(dcv, "/dcv/"))
    checked(page, language)
    code = page.get_by_label(text["code"], exact=True)
    code.fill(WRONG_CODE)
    page.get_by_role("button", name="Next").click()
    # A wrong code is an error of the field: marked invalid, the message tied to it.
    expect(code).to_have_attribute("aria-invalid", "true")
    expect(code).to_have_attribute("aria-describedby", "id_code_helptext id_code_error")
    expect(page.locator("#id_code_error")).to_have_text(text["invalid"])
    checked(page, language)
    s.shot("dcv-wrong-code")
    # The authority's page keeps the guide's English buttons, marked English.
    expect(page.get_by_role("button", name="Next")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Close window")).to_have_attribute("lang", "en")

    code.fill(re.search(r"^\s{4}(\S+)\s*$", text_body(dcv), re.M).group(1))
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#dcv-result")).to_contain_text(text["valid"])
    checked(page, language)
    page.goto(f"{portal.url}/platforms/{platform.service}/")
    checked(page, language)  # finalising
    s.shot("finalising")
    page.goto(f"{portal.url}/")
    checked(page, language)  # the line of the platform being finalised
    s.shot("home-finalising")


def test_focus_ring_and_borders_reach_three_to_one(portal, in_process_worker: Work, screen):
    """WCAG 1.4.11: what shows a control and its focus contrasts 3:1 with what surrounds it."""
    s = screen(language="en")
    page = s.page
    platform = delivered_platform(AccountFactory(language="en"))
    page.goto(links.setup_url(platform))
    controls = {"#id_username": True, "#id_password": True, "button.primary": False}
    for selector, bordered in controls.items():
        colours = control_colours(page, selector)
        assert colours["ring"] and colours["ringWidth"] >= 2, (selector, colours)
        assert contrast(colours["ring"], colours["around"]) >= 3, (selector, colours)
        if bordered:
            assert contrast(colours["border"], colours["around"]) >= 3, (selector, colours)
    log_in(page, TEXTS["en"], platform.account.nic)
    expect(page.get_by_label("Domain", exact=True)).to_be_visible()
    for selector in ("#id_subdomain", "#id_domain", "#id_validation_email", "a.brand", "a.skip"):
        colours = control_colours(page, selector)
        assert colours["ring"] and colours["ringWidth"] >= 2, (selector, colours)
        assert contrast(colours["ring"], colours["around"]) >= 3, (selector, colours)
        if selector.startswith("#id_"):
            assert contrast(colours["border"], colours["around"]) >= 3, (selector, colours)
    s.shot("focused-skip-link")


def test_a_copied_record_is_announced(portal, in_process_worker: Work, screen):
    platform = delivered_platform(AccountFactory(language="fr"))
    s = screen(language="fr")
    page = s.page
    s.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=portal.url)
    page.goto(links.setup_url(platform))
    log_in(page, TEXTS["fr"], platform.account.nic)
    page.get_by_label("Sous-domaine", exact=True).select_option("mail")
    page.get_by_label(TEXTS["fr"]["domain"], exact=True).fill(ZONE)
    page.get_by_role("button", name=TEXTS["fr"]["validate"]).click()
    announcer = page.locator("#copy-status")
    expect(announcer).to_have_attribute("role", "status")
    expect(announcer).to_be_empty()

    page.get_by_role("button", name="Copier le nom relatif mail").first.click()
    expect(announcer).to_have_text("Copié : mail")
    assert page.evaluate("navigator.clipboard.readText()") == "mail"
    page.get_by_role("button", name=f"Copier le nom mail.{ZONE}").first.click()
    expect(announcer).to_have_text(f"Copié : mail.{ZONE}")
    assert page.evaluate("navigator.clipboard.readText()") == f"mail.{ZONE}"
    # The authority's English words in the French text are marked English.
    for words in ("Next", f"ORDER #{platform.order_number} - Domain Control Validation"):
        expect(page.locator("main [lang=en]").filter(has_text=words)).to_have_count(1)
    s.shot("copied")
