"""Choosing how the certificate is validated, in Chromium: the method at setup (DNS record),
the record shown with its copy buttons, then switching to e-mail and back on the status
page while validation waits. Every page under its Content-Security-Policy (screen)."""

import re

from playwright.sync_api import expect

from provisioning.models import Platform
from provisioning.services import platform_order
from tests.browser.conftest import TIMEOUT_MS, link
from tests.browser.pages import check_page
from tests.factories import PASSWORD, AccountFactory

expect.set_options(timeout=TIMEOUT_MS)

ZONE = "example.test"


def test_choosing_dns_at_setup_then_switching_method(portal, in_process_worker, screen):
    work, screen = in_process_worker, screen(language="en")
    page = screen.page
    account = AccountFactory(nic="xx-61000-ovh", language="en")
    platform = platform_order(account=account, actor="billing")
    page.goto(link(work.email("is being delivered!"), "/setup/"))
    page.get_by_label("Customer account (NIC handle)").fill(account.nic)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    method = page.get_by_label("Certificate validation", exact=True)
    expect(method).to_have_value("email")  # the guide's method is the default
    page.get_by_label("Domain", exact=True).fill(ZONE)
    page.get_by_label("Validation e-mail", exact=True).select_option("hostmaster")
    method.select_option("dns")
    check_page(page, "en")
    screen.shot("setup-dns-method")
    page.get_by_role("button", name="Validate").click()

    expect(page.locator("h1")).to_contain_text("Your platform is configured")
    work.email("is being delivered!")  # runs the owed work in process
    page.reload()
    record = page.locator("#dns-validation-record")
    expect(record).to_contain_text(f"_dnsauth.exchange.{ZONE}")
    expect(record).to_contain_text("_dnsauth.exchange")
    expect(record).to_contain_text("TXT")
    expect(record.get_by_role("button", name="Copy the value")).to_be_visible()
    expect(page.get_by_role("button", name="Check the TXT record now")).to_be_visible()
    check_page(page, "en")
    screen.shot("status-dns-record")
    assert Platform.objects.get(pk=platform.pk).certificate.method == "dns"

    page.get_by_role("button", name="Switch to e-mail validation").click()
    expect(page.locator(".messages")).to_contain_text("A new validation e-mail is on its way")
    expect(page.locator("#certificate")).to_contain_text("The validation e-mail was sent to")
    check_page(page, "en")
    screen.shot("status-switched-to-email")
    dcv = work.email("Domain Control Validation")
    assert re.search(rf"ORDER #{platform.order_number} - Domain", dcv["Subject"])

    page.get_by_role("button", name="Switch to DNS validation").click()
    expect(page.locator(".messages")).to_contain_text("Add the TXT record shown below")
    expect(page.locator("#dns-validation-record")).to_be_visible()
    screen.shot("status-switched-to-dns")
    assert Platform.objects.get(pk=platform.pk).certificate.method == "dns"
