"""Keyboard only: the login and the setup form with Tab, arrows, Space and Enter; after a
refused submission the error summary has the focus and leads to the field."""

from playwright.sync_api import expect

from provisioning.services import platform_order
from tests.browser.conftest import TIMEOUT_MS, link
from tests.browser.pages import check_page, focused
from tests.factories import PASSWORD, AccountFactory

expect.set_options(timeout=TIMEOUT_MS)


def test_login_and_setup_with_the_keyboard_only(portal, in_process_worker, screen):
    account = AccountFactory(nic="xx-90004-ovh", zones=["example.test"], language="en")
    platform = platform_order(account=account, actor="billing")
    setup_url = link(in_process_worker.email("is being delivered!"), "/setup/")
    s = screen(language="en")
    page, keyboard = s.page, s.page.keyboard

    # The login: the first field has the focus; a wrong password is announced and focused.
    page.goto(setup_url)
    expect(page.get_by_label("Customer account (NIC handle)")).to_be_focused()
    keyboard.type(account.nic)
    keyboard.press("Tab")
    assert focused(page) == "password"
    keyboard.type("not the password")
    keyboard.press("Enter")
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_have_attribute("role", "alert")
    expect(summary).to_contain_text("Please enter a correct username and password")
    check_page(page, "en")
    s.shot("login-refused")
    keyboard.press("Tab")
    assert focused(page) == "username"
    keyboard.press("Tab")
    keyboard.type(PASSWORD)
    keyboard.press("Enter")

    # The setup form, from the skip link down, in the order it reads. Keys wait for the
    # whole page: on a busy machine the heading shows before the parser reaches the
    # select's later options, and an arrow key then has nothing to move to.
    expect(page.get_by_role("heading", level=1)).to_contain_text(platform.service)
    page.wait_for_load_state("load")
    keyboard.press("Tab")
    assert focused(page) == "Skip to content"
    keyboard.press("Enter")
    assert focused(page) == "main"
    keyboard.press("Tab")
    assert focused(page) == "subdomain"
    keyboard.press("ArrowDown")
    expect(page.get_by_label("Sub-domain")).to_have_value("mail")
    keyboard.press("Tab")
    assert focused(page) == "domain"
    keyboard.press("Tab")
    assert focused(page) == "validation_email"
    keyboard.press("Tab")
    assert focused(page) == "validation_method"
    keyboard.press("Tab")  # DNS Assist waits for a domain of the account: not reachable yet
    assert focused(page) == "Validate"
    s.shot("setup-by-keyboard")
    keyboard.press("Enter")

    # Refused: the summary has the focus, the field says why and is marked invalid.
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    page.wait_for_load_state("load")
    expect(summary).to_contain_text("The form has 1 error: nothing was changed.")
    domain = page.get_by_label("Domain", exact=True)
    expect(domain).to_have_attribute("aria-invalid", "true")
    expect(domain).to_have_attribute("aria-describedby", "id_domain_helptext id_domain_error")
    expect(page.locator("#id_domain_error")).to_have_text("This field is required.")
    check_page(page, "en")
    s.shot("setup-refused")
    keyboard.press("Tab")
    assert focused(page) == "Domain: This field is required."
    keyboard.press("Enter")  # the summary's link leads to the field
    expect(domain).to_be_focused()
    keyboard.type("example.test")
    keyboard.press("Tab")
    for _ in range(3):
        keyboard.press("ArrowDown")
    expect(page.get_by_label("Validation e-mail")).to_have_value("hostmaster")
    keyboard.press("Tab")
    assert focused(page) == "validation_method"  # e-mail, the guide's method, stays chosen
    keyboard.press("Tab")
    assert focused(page) == "dns_assist"
    keyboard.press("Space")
    expect(page.get_by_label("DNS Assist", exact=True)).to_be_checked()
    keyboard.press("Tab")
    assert focused(page) == "Validate"
    s.shot("setup-filled-by-keyboard")
    keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_have_text("Your platform is configured")
    expect(page.locator("main")).to_contain_text("hostmaster@example.test")
    expect(page.locator("main")).to_contain_text("https://mail.example.test/owa")
    s.shot("configured")
