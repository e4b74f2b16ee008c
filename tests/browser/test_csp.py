"""The Content-Security-Policy in Chromium: Django's admin pages are served with the strict
policy and break none of it. (The customer pages are checked on every browser test by the
`screen` fixture, the whole journey in test_customer_journey.py.)"""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS
from tests.factories import AccountFactory
from tests.helpers import validating_platform

expect.set_options(timeout=TIMEOUT_MS)

ADMIN_PASSWORD = "operator-password-for-tests"


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_admin_pages_break_no_policy(portal, mailbox, screen, javascript):
    platform = validating_platform(AccountFactory(language="en"), domain="client.example")
    get_user_model().objects.create_superuser("operator", "op@example.net", ADMIN_PASSWORD)
    s = screen(language="en", javascript=javascript)
    page = s.page

    page.goto(f"{portal.url}/admin/")
    expect(page).to_have_url(f"{portal.url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    s.shot("admin-index")

    page.goto(f"{portal.url}/admin/provisioning/platform/")
    expect(page.get_by_role("link", name=platform.service)).to_be_visible()
    if javascript:  # the changelist's scripts run: selecting a row enables the actions
        page.locator("input.action-select").first.check()
        expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    s.shot("platform-changelist")
    page.get_by_role("link", name=platform.service).click()
    expect(page.get_by_role("heading", level=2, name=platform.service)).to_be_visible()
    s.shot("platform-change-form")
    page.get_by_role("link", name="Resend an email").click()
    s.shot("platform-resend")
    page.goto(f"{portal.url}/admin/provisioning/account/add/")
    expect(page.locator("#account_form")).to_be_visible()
    s.shot("account-add-form")
    page.goto(f"{portal.url}/admin/auth/user/{platform.account.users.get().pk}/change/")
    if javascript:  # the filtered multi-selects are built by the admin's scripts
        expect(page.locator("#id_groups_from")).to_be_visible()
    s.shot("user-change-form")
    page.goto(f"{portal.url}/admin/notifications/email/")
    s.shot("email-changelist")
    s.assert_csp_respected()
