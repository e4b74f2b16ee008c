"""The pages speak the account's language once logged in, whatever the browser's; before
the login (and for the error pages of anonymous visitors) they follow the browser."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS
from tests.browser.pages import check_page
from tests.factories import PASSWORD, AccountFactory

expect.set_options(timeout=TIMEOUT_MS)


@pytest.mark.parametrize(
    ("browser_language", "account_language", "texts"),
    [
        (
            "fr",
            "en",
            {
                "login": "Connexion",
                "username": "Identifiant client (NIC handle)",
                "password": "Mot de passe",
                "button": "Se connecter",
                "home": "Your Private Exchange platforms",
                "not_found": "Page not found",
            },
        ),
        (
            "en",
            "fr",
            {
                "login": "Log in",
                "username": "Customer account (NIC handle)",
                "password": "Password",
                "button": "Log in",
                "home": "Vos plateformes Private Exchange",
                "not_found": "Page introuvable",
            },
        ),
    ],
    ids=["english-account-in-a-french-browser", "french-account-in-an-english-browser"],
)
def test_the_account_language_wins_over_the_browsers(
    portal, screen, browser_language, account_language, texts
):
    account = AccountFactory(language=account_language)
    s = screen(language=browser_language)
    page = s.page
    page.goto(f"{portal.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(texts["login"])
    check_page(page, browser_language)
    page.get_by_label(texts["username"]).fill(account.nic)
    page.get_by_label(texts["password"], exact=True).fill(PASSWORD)
    page.get_by_role("button", name=texts["button"]).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(texts["home"])
    check_page(page, account_language)
    s.shot("home")
    response = page.goto(f"{portal.url}/platforms/pex-nothere/")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text(texts["not_found"])
    check_page(page, account_language)
    s.shot("not-found")
