"""SQL statements per customer page, exactly (issue 7: at most 6 per page; issue 16: the
valid setup POST in at most 12; benchmarks/pages.py measures the same pages under load).

The counts include the session (here in the database: the embedded default's cache is
per-process) and the user with the account's language (one query, portal.auth), which
every logged-in page loads. With the shared cache of production, the session is read from
its copy: one statement fewer (test_sessions.py). Inside a test the service's transaction
is a savepoint of the test's own: a POST counts SAVEPOINT and RELEASE where a real request
on PostgreSQL counts BEGIN and COMMIT, so the numbers are the same.
"""

import pytest
from django.utils import timezone

from certificates.services import certificate_order_create
from provisioning import links
from provisioning.models import Platform
from tests.factories import AccountFactory
from tests.helpers import delivered_platform

pytestmark = pytest.mark.django_db

PAGE_QUERIES = 6
# Session, user and language, the platform, the zones with the domain's holders (one query).
SETUP_GET = 4
# Session, user and language, the platform with its certificate.
STATUS_GET = 3
assert max(SETUP_GET, STATUS_GET) <= PAGE_QUERIES
# The valid setup POST: session, user and language, the platform, the form's zones and
# holders; then in platform_configure's transaction (BEGIN), the platform locked, the zones
# and holders again under the lock, the UPDATE, the event, the two jobs (COMMIT). Without
# DNS Assist the emailed records add the DNS track's UPDATE and event, the email (in
# notifications' savepoint) and its event. Issue 16's goal: at most 12.
SETUP_POST = {True: 12, False: 18}


@pytest.fixture
def account():
    return AccountFactory(zones=["example.com"], language="en")


@pytest.fixture
def customer(client, account):
    client.force_login(account.users.get())
    return client


def setup_path(platform) -> str:
    return f"/setup/{links.setup_token(platform)}/"


def test_setup_page(customer, account, django_assert_num_queries):
    platform = delivered_platform(account)
    customer.get(setup_path(platform))  # content types, templates: cached after the first
    with django_assert_num_queries(SETUP_GET):
        response = customer.get(setup_path(platform))
    assert response.status_code == 200
    assert 'name="domain"' in response.content.decode()


@pytest.mark.parametrize("dns_assist", [True, False])
def test_valid_setup_post(customer, account, dns_assist, django_assert_num_queries):
    warm = delivered_platform(account)
    customer.get(setup_path(warm))
    platform = delivered_platform(account)
    form = {
        "service": platform.service,
        "subdomain": "exchange",
        "domain": "example.com",
        "validation_email": "hostmaster",
        "dns_assist": "on" if dns_assist else "",
    }
    with django_assert_num_queries(SETUP_POST[dns_assist]):
        response = customer.post(setup_path(platform), form)
    assert response.status_code == 302
    assert Platform.objects.get(pk=platform.pk).state == "configured"
    assert SETUP_POST[True] <= 12  # issue 16


def _status_platform(account, state: str) -> Platform:
    platform = delivered_platform(account)
    if state == "awaiting_setup":
        return platform
    order = certificate_order_create(
        server_name="exchange.example.com",
        validation_email="hostmaster@example.com",
        order_number=platform.order_number,
        backend="internal",
    )
    records = [
        {"rtype": t, "name": "exchange.example.com", "expected": v, "found": [v], "status": "ok"}
        for t, v in (("A", platform.ipv4), ("AAAA", platform.ipv6))
    ]
    Platform.objects.filter(pk=platform.pk).update(
        state=state,
        domain="example.com",
        server_name="exchange.example.com",
        validation_email="hostmaster@example.com",
        dns_assist=True,
        dns_state="verified",
        dns_records=records,
        dns_checked_at=timezone.now(),
        certificate=order,
        ready_at=timezone.now() if state == "ready" else None,
    )
    return Platform.objects.get(pk=platform.pk)


@pytest.mark.parametrize("state", ["awaiting_setup", "certificate_pending", "ready"])
def test_status_page(customer, account, state, django_assert_num_queries):
    platform = _status_platform(account, state)
    path = f"/platforms/{platform.service}/"
    customer.get(path)
    with django_assert_num_queries(STATUS_GET):
        response = customer.get(path)
    assert response.status_code == 200
    assert platform.service in response.content.decode()
