"""The seed guide's five steps as the customer lives them, in Chromium: the delivery email's
link, the login, the setup form, the validation email's link and code, the ready email, the
customer space. With and without JavaScript, in French and in English, on a phone."""

import re

import pytest
from playwright.sync_api import Page, expect

from provisioning.services import platform_order
from tests.browser.conftest import TIMEOUT_MS, Screen, Work, link
from tests.browser.pages import check_page
from tests.conftest import text_body
from tests.factories import PASSWORD, AccountFactory

expect.set_options(timeout=TIMEOUT_MS)

ZONE = "example.test"  # served by BIND9 (tests/bind.py) and managed on the test accounts
OTHER = "other.example"  # a domain whose zone the account does not manage
LOCAL_PARTS = ["admin", "administrator", "webmaster", "hostmaster", "postmaster"]

TEXTS = {
    "en": {
        "delivery_subject": "is being delivered!",
        "ready_subject": "is ready!",
        "ready_warning": "Warning:",
        "login_title": "Log in",
        "username": "Customer account (NIC handle)",
        "password": "Password",
        "login": "Log in",
        "setup_title": "Initialise your platform",
        "server_name": "Server name",
        "subdomain": "Sub-domain",
        "domain": "Domain",
        "email": "Validation e-mail",
        "validate": "Validate",
        "not_managed": f"DNS Assist is not available for {OTHER}",
        "assist_refused": "DNS Assist is only available for domains whose zone is managed",
        "configured": "Your platform is configured",
        "dcv_title": "Domain Control Validation",
        "code": "Validation code",
        "no_code": "Paste the validation code from the e-mail.",
        "valid": "The code is valid",
        "back": "Back to your customer space",
        "finalising": "The platform is being finalised",
        "finalising_home": "order #{order} is being finalised: it will appear here once ready",
        "home_title": "Your Private Exchange platforms",
        "next_step": "Next step:",
    },
    "fr": {
        "delivery_subject": "est en cours de livraison !",
        "ready_subject": "est prêt !",
        "ready_warning": "Attention",
        "login_title": "Connexion",
        "username": "Identifiant client (NIC handle)",
        "password": "Mot de passe",
        "login": "Se connecter",
        "setup_title": "Initialisation de votre plateforme",
        "server_name": "Nom de votre serveur",
        "subdomain": "Sous-domaine",
        "domain": "Nom de domaine",
        "email": "E-mail",
        "validate": "Valider",
        "not_managed": f"DNS Assist n'est pas disponible pour {OTHER}",
        "assist_refused": "DNS Assist n'est disponible que pour les noms de domaine",
        "configured": "La configuration a bien été effectuée",
        "dcv_title": "Validation du contrôle du domaine",
        "code": "Code de validation",
        "no_code": "Collez le code de validation contenu dans l'e-mail.",
        "valid": "Le code est valide",
        "back": "Retour à votre espace client",
        "finalising": "peut encore être nécessaire",
        "finalising_home": "commande n° {order} est en cours de finalisation : elle apparaîtra",
        "home_title": "Vos plateformes Private Exchange",
        "next_step": "Étape suivante",
    },
}


def heading(page: Page):
    return page.get_by_role("heading", level=1)


def customer_journey(
    portal, work: Work, screen: Screen, *, nic: str, language: str, javascript: bool
) -> None:
    text = TEXTS[language]
    page = screen.page
    main = page.locator("main")
    account = AccountFactory(nic=nic, zones=[ZONE], language=language)
    platform = platform_order(account=account, actor="billing")

    # Step 1: the delivery email, to the account's reference address, with its link.
    delivery = work.email(text["delivery_subject"])
    assert delivery["To"] == account.email
    assert platform.service in delivery["Subject"]
    setup_url = link(delivery, "/setup/")
    assert setup_url.startswith(portal.url)

    # Step 2: the link asks for a login first, then shows the setup form.
    page.goto(setup_url)
    expect(page).to_have_url(re.compile(r"/login/\?next=/setup/"))
    expect(heading(page)).to_have_text(text["login_title"])
    check_page(page, language)
    screen.shot("login")
    page.get_by_label(text["username"]).fill(account.nic)
    page.get_by_label(text["password"], exact=True).fill(PASSWORD)
    page.get_by_role("button", name=text["login"]).click()

    expect(heading(page)).to_have_text(f"{text['setup_title']} {platform.service}")
    expect(page.get_by_role("group", name=text["server_name"])).to_be_visible()
    check_page(page, language)
    screen.shot("setup-form")
    subdomain = page.get_by_label(text["subdomain"], exact=True)
    domain = page.get_by_label(text["domain"], exact=True)
    email = page.get_by_label(text["email"], exact=True)
    assist = page.get_by_label("DNS Assist", exact=True)
    addresses = email.locator("option")
    subdomain.select_option("mail")

    if javascript:
        # The addresses and the webmail follow the domain as it is typed; DNS Assist is
        # offered only for the account's zones.
        domain.press_sequentially(OTHER)
        expect(addresses).to_have_text([f"{local}@{OTHER}" for local in LOCAL_PARTS])
        expect(assist).to_be_disabled()
        expect(page.locator("#dns-assist-hint")).to_contain_text(text["not_managed"])
        check_page(page, language)
        screen.shot("domain-not-managed")
        domain.fill("")
        domain.press_sequentially(ZONE)
        expect(addresses).to_have_text([f"{local}@{ZONE}" for local in LOCAL_PARTS])
        expect(page.locator("#webmail-preview")).to_have_text(f"https://mail.{ZONE}/owa")
        expect(assist).to_be_enabled()
    else:
        # Without JavaScript the server sees the domain on submission: DNS Assist on a zone
        # of another account is refused on its field, and the addresses follow the domain.
        expect(addresses.first).to_have_text("admin@…")
        domain.fill(OTHER)
        email.select_option("hostmaster")
        assist.check()
        page.get_by_role("button", name=text["validate"]).click()
        expect(page.locator("#error-summary")).to_be_focused()
        expect(assist).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#id_dns_assist_error")).to_contain_text(text["assist_refused"])
        expect(addresses).to_have_text([f"{local}@{OTHER}" for local in LOCAL_PARTS])
        check_page(page, language)
        screen.shot("dns-assist-refused")
        domain.fill(ZONE)
        expect(assist).to_be_checked()
    email.select_option(label=f"hostmaster@{ZONE}" if javascript else f"hostmaster@{OTHER}")
    assist.check()
    screen.shot("form-filled")
    page.get_by_role("button", name=text["validate"]).click()

    # The confirmation recalls the validation address and the webmail.
    expect(heading(page)).to_have_text(text["configured"])
    expect(main).to_contain_text(f"hostmaster@{ZONE}")
    expect(main).to_contain_text(f"https://mail.{ZONE}/owa")
    check_page(page, language)
    screen.shot("configured")

    # Steps 3 and 4: DNS Assist wrote the records; the authority's email, with its code.
    dcv = work.email("Domain Control Validation")
    assert dcv["Subject"] == (
        f"ORDER #{platform.order_number} - Domain Control Validation for mail.{ZONE}"
    )
    assert dcv["To"] == f"hostmaster@{ZONE}"
    code = re.search(r"^\s{4}(\S+)\s*$", text_body(dcv), re.M).group(1)
    page.goto(link(dcv, "/dcv/"))
    expect(heading(page)).to_have_text(text["dcv_title"])
    check_page(page, language)
    screen.shot("dcv-page")
    code_field = page.get_by_label(text["code"], exact=True)
    if not javascript:
        # A paste without the code is refused on the field, and counts for nothing.
        code_field.fill(" - ")
        page.get_by_role("button", name="Next").click()
        expect(page.locator("#dcv-result")).to_be_focused()
        expect(code_field).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#id_code_error")).to_have_text(text["no_code"])
        check_page(page, language)
        screen.shot("dcv-no-code")
    code_field.fill(code)
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#dcv-result")).to_contain_text(text["valid"])
    check_page(page, language)
    screen.shot("dcv-valid")
    if javascript:
        page.get_by_role("button", name="Close window").click()
    else:  # a button that needs a script is not offered without one
        expect(page.get_by_role("button", name="Close window")).to_be_hidden()
        page.get_by_role("link", name=text["back"]).click()
    expect(page).to_have_url(f"{portal.url}/platforms/{platform.service}/")
    expect(main).to_contain_text(text["finalising"])
    check_page(page, language)
    screen.shot("finalising")

    # Step 5: hidden from the customer space while finalising, shown once ready.
    page.get_by_role("link", name="Private Exchange").click()
    expect(heading(page)).to_have_text(text["home_title"])
    expect(main).not_to_contain_text(platform.service)
    expect(main).to_contain_text(text["finalising_home"].format(order=platform.order_number))
    check_page(page, language)
    screen.shot("home-while-finalising")
    work.four_hours_later()
    ready = work.email(text["ready_subject"])
    body = text_body(ready)
    assert f"https://mail.{ZONE}/owa" in body
    assert text["ready_warning"] not in body  # DNS Assist's records were found
    page.reload()
    card = page.get_by_role("listitem").filter(has_text=platform.service)
    expect(card.get_by_role("link", name=f"https://mail.{ZONE}/owa")).to_be_visible()
    expect(card).to_contain_text(text["next_step"])
    check_page(page, language)
    screen.shot("home-ready")
    # The whole journey ran under the strict Content-Security-Policy, and broke none of it.
    screen.assert_csp_respected()


@pytest.mark.postgres
def test_english_customer_with_a_real_worker(portal, real_worker, screen):
    """Desktop, JavaScript on; the worker on Redis sends every email."""
    customer_journey(
        portal,
        real_worker,
        screen(language="en"),
        nic="xx-90001-ovh",
        language="en",
        javascript=True,
    )


def test_french_customer_without_javascript(portal, in_process_worker, screen):
    customer_journey(
        portal,
        in_process_worker,
        screen(language="fr", javascript=False),
        nic="xx-90002-ovh",
        language="fr",
        javascript=False,
    )


def test_french_customer_on_a_phone(portal, in_process_worker, screen):
    customer_journey(
        portal,
        in_process_worker,
        screen(language="fr", phone=True),
        nic="xx-90003-ovh",
        language="fr",
        javascript=True,
    )
