"""The domains page of a ready platform in Chromium, in both languages and on a phone: from
the platform's page to the list, adding a zone of the account and an outside domain (its
ownership CNAME shown), a refused input, the records with their dots in words, check now,
the mode page and the removal's confirmation; the page's policy (CSP) respected throughout."""

import re

import pytest
from playwright.sync_api import Page, expect

from provisioning.models import Domain, Platform
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.pages import check_accessibility, check_page
from tests.factories import PASSWORD, AccountFactory
from tests.helpers import delivered_platform

expect.set_options(timeout=TIMEOUT_MS)

TEXTS = {
    "en": {
        "username": "Customer account (NIC handle)",
        "password": "Password",
        "login": "Log in",
        "domains": "Domains",
        "title": "Domains of {service}",
        "empty": "receives mail for no domain yet",
        "domain": "Domain",
        "authoritative": "Authoritative",
        "shared": "Non-authoritative",
        "relay": "Other mail server",
        "add": "Add a domain",
        "added": "is added",
        "relay_missing": "Give the host name of the other mail server",
        "ownership": "prove that it is yours",
        "unchecked": "Not checked yet",
        "check": "Check {domain} now",
        "mode": "Change the mode",
        "remove": "Remove",
        "remove_title": "Remove {domain}?",
        "remove_button": "Remove the domain",
        "removed": "is removed",
        "mode_changed": "is changed",
        "zone_file": "Download them as a zone-file snippet",
    },
    "fr": {
        "username": "Identifiant client (NIC handle)",
        "password": "Mot de passe",
        "login": "Se connecter",
        "domains": "Domaines",
        "title": "Domaines de {service}",
        "empty": "ne reçoit encore le courrier d'aucun domaine",
        "domain": "Nom de domaine",
        "authoritative": "Faisant autorité",
        "shared": "Ne faisant pas autorité",
        "relay": "Autre serveur de messagerie",
        "add": "Ajouter un domaine",
        "added": "est ajouté",
        "relay_missing": "Indiquez le nom d'hôte de l'autre serveur",
        "ownership": "prouvez qu'il est à vous",
        "unchecked": "Pas encore vérifié",
        "check": "Vérifier {domain} maintenant",
        "mode": "Changer le mode",
        "remove": "Supprimer",
        "remove_title": "Supprimer {domain} ?",
        "remove_button": "Supprimer le domaine",
        "removed": "est supprimé",
        "mode_changed": "est modifié",
        "zone_file": "Les télécharger comme extrait de fichier de zone",
    },
}


def radio(page: Page, mode: str):
    """The mode's radio button, whose label starts with the mode's name."""
    return page.get_by_role("radio", name=re.compile(rf"^{re.escape(mode)}\s*:"))


@pytest.mark.parametrize(
    ("language", "phone"), [("en", False), ("fr", True)], ids=["english-desktop", "french-phone"]
)
def test_the_domains_page(portal, in_process_worker, screen, bind, language, phone):
    text = TEXTS[language]
    account = AccountFactory(zones=[bind.zone], language=language)
    platform = delivered_platform(account)
    Platform.objects.filter(pk=platform.pk).update(
        state="ready", domain=bind.zone, server_name=f"mail.{bind.zone}"
    )
    s = screen(language=language, phone=phone, axe=not phone)
    page = s.page
    page.goto(f"{portal.url}/login/?next=/platforms/{platform.service}/")
    page.get_by_label(text["username"]).fill(account.nic)
    page.get_by_label(text["password"], exact=True).fill(PASSWORD)
    page.get_by_role("button", name=text["login"]).click()

    page.get_by_role("link", name=text["domains"], exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        text["title"].format(service=platform.service)
    )
    expect(page.locator("main")).to_contain_text(text["empty"])
    check_page(page, language)
    if not phone:
        check_accessibility(page)
    s.shot("empty")

    # A shared domain without the other server: refused on its field, nothing added.
    page.get_by_label(text["domain"], exact=True).fill("bücher.example")
    radio(page, text["shared"]).check()
    page.get_by_role("button", name=text["add"]).click()
    expect(page.locator("#id_relay_host_error")).to_contain_text(text["relay_missing"])
    assert not Domain.objects.exists()
    check_page(page, language)
    s.shot("refused")

    page.get_by_role("textbox", name=text["relay"]).fill("mx.other.example")
    page.get_by_role("button", name=text["add"]).click()
    expect(page.locator(".messages")).to_contain_text(text["added"])
    outside = page.get_by_role("article").filter(has_text="bücher.example")
    expect(outside).to_contain_text(text["ownership"])
    token = Domain.objects.get(name="xn--bcher-kva.example").ownership_token
    expect(outside.locator("table")).to_contain_text(f"{token}-check.xn--bcher-kva.example")
    s.shot("outside-added")

    page.get_by_label(text["domain"], exact=True).fill(bind.zone)
    radio(page, text["authoritative"]).check()
    page.get_by_role("button", name=text["add"]).click()
    zone = page.get_by_role("article").filter(has_text=bind.zone).first
    dots = zone.locator(".record-dot")
    expect(dots.first).to_be_visible()
    assert dots.count() == 6  # MX, SRV, SPF, 2 DKIM, DMARC: each with its status in words
    expect(dots.first).to_contain_text("MX @")
    expect(zone.get_by_role("link", name=text["zone_file"])).to_be_visible()
    check_page(page, language)
    if not phone:
        check_accessibility(page)
    s.shot("two-domains")

    zone.get_by_role("button", name=text["check"].format(domain=bind.zone)).click()
    zone = page.get_by_role("article").filter(has_text=bind.zone).first
    expect(zone.locator(".record-dot.status-missing").first).to_be_visible()
    s.shot("checked")

    zone.get_by_role("link", name=text["mode"]).click()
    check_page(page, language)
    radio(page, text["shared"]).check()
    page.get_by_role("textbox", name=text["relay"]).fill(f"mx.{bind.zone}")
    page.get_by_role("button", name=text["mode"]).click()
    expect(page.locator(".messages")).to_contain_text(text["mode_changed"])
    s.shot("mode-changed")

    outside = page.get_by_role("article").filter(has_text="bücher.example")
    outside.get_by_role("link", name=text["remove"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        text["remove_title"].format(domain="bücher.example")
    )
    check_page(page, language)
    s.shot("remove-confirmation")
    page.get_by_role("button", name=text["remove_button"]).click()
    expect(page.locator(".messages")).to_contain_text(text["removed"])
    assert list(Domain.objects.values_list("name", "mode")) == [(bind.zone, "non_authoritative")]
    s.shot("removed")
