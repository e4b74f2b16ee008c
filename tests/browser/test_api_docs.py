"""The API's docs page in Chromium: Swagger UI from the portal's own static files renders
the description under the strict Content-Security-Policy (the `screen` fixture fails the
test on any violation)."""

from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS

expect.set_options(timeout=TIMEOUT_MS)


def test_the_api_docs_render_under_the_policy(transactional_db, live_server, screen):
    s = screen(language="en")
    page = s.page
    assets = []
    page.on("request", lambda request: assets.append(request.url))
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.get_by_text("Private Exchange portal API")).to_be_visible()
    expect(page.get_by_text("/api/orders/{service}/terminate")).to_be_visible()
    s.shot("api-docs")
    assert all(url.startswith(live_server.url) for url in assets), assets  # no CDN
