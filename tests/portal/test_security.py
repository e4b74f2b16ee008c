"""Hostile input and access across accounts: refused, escaped, limited, never leaked."""

import os
import subprocess
import sys

import pytest
from django.test import Client

from certificates.models import CertificateOrder
from provisioning import links
from provisioning.models import Platform
from tests.factories import PASSWORD, AccountFactory
from tests.helpers import delivered_platform, validating_platform

pytestmark = pytest.mark.django_db


@pytest.fixture
def configured(mailbox, bind, settings):
    bind.configure(settings)
    return validating_platform(AccountFactory(language="en"), domain="victim.example")


@pytest.fixture
def stranger():
    client = Client()
    client.force_login(AccountFactory().users.get())
    return client


def test_another_account_gets_404_everywhere(configured, stranger):
    service = configured.service
    token = links.dcv_token(configured)
    for path in [
        f"/setup/{links.setup_token(configured)}/",
        f"/platforms/{service}/",
        f"/platforms/{service}/certificate-chain.pem",
        f"/dcv/{configured.order_number}/{token}/",
    ]:
        assert stranger.get(path).status_code == 404, path
    for path in [f"/platforms/{service}/check-dns/", f"/platforms/{service}/resend-validation/"]:
        assert stranger.post(path, {}).status_code == 404, path
    assert configured.emails.filter(kind="dcv").count() == 1


def test_pages_need_a_login(configured):
    anonymous = Client()
    for path in ["/", f"/platforms/{configured.service}/"]:
        response = anonymous.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_script_in_a_field_is_refused_and_escaped(customer_client, account, mailbox):
    platform = delivered_platform(account)
    response = customer_client.post(
        f"/setup/{links.setup_token(platform)}/",
        {
            "service": platform.service,
            "subdomain": "mail",
            "domain": '<script>alert("x")</script>.example',
            "validation_email": "admin",
        },
    )
    page = response.content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;" in page
    assert Platform.objects.get(pk=platform.pk).state == "awaiting_setup"


def test_header_injection_through_the_account_email_is_impossible(mailbox):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError):
        call_command(
            "create_account",
            "xx-1-ovh",
            "--email",
            "a@b.example\r\nBcc: x@y.example",
            "--password",
            "a-good-long-password",
        )


def test_dcv_guessing_is_rate_limited_per_address_and_per_order(configured, settings):
    settings.RATELIMITS = {**settings.RATELIMITS, "dcv": (3, 600)}
    client = Client()
    client.force_login(configured.account.users.get())
    path = f"/dcv/{configured.order_number}/{links.dcv_token(configured)}/"
    codes = [
        client.post(path, {"code": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"}).status_code for _ in range(4)
    ]
    assert codes == [400, 400, 400, 429]
    assert client.get(path).status_code == 200  # reading the page is not an attempt
    from_elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    from_elsewhere.force_login(configured.account.users.get())
    response = from_elsewhere.post(path, {"code": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"})
    assert response.status_code == 429  # the order itself is limited too
    assert "Retry-After" in response
    assert CertificateOrder.objects.get(pk=configured.certificate_id).dcv_attempts == 3


def test_login_guessing_is_rate_limited(settings):
    settings.RATELIMITS = {**settings.RATELIMITS, "login": (5, 300)}
    settings.AXES_FAILURE_LIMIT = 10  # the per-address limit alone (axes: test_login.py)
    AccountFactory(nic="xx-99-ovh")
    client = Client()
    statuses = [
        client.post("/login/", {"username": "xx-99-ovh", "password": "guess"}).status_code
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    assert (
        client.post("/login/", {"username": "xx-99-ovh", "password": PASSWORD}).status_code == 429
    )


def test_api_is_rate_limited(settings, client):
    settings.ORDER_API_TOKEN = "t"
    settings.RATELIMITS = {**settings.RATELIMITS, "api": (2, 60)}
    statuses = [
        client.get("/api/orders/pex-x/", headers={"Authorization": "Bearer t"}).status_code
        for _ in range(3)
    ]
    assert statuses == [404, 404, 429]


def test_private_keys_never_leave(configured, client, settings, mailbox):
    from django.contrib.auth import get_user_model

    settings.ORDER_API_TOKEN = "t"
    admin = get_user_model().objects.create_superuser("root", "r@h.example", "pw")
    client.force_login(admin)
    order = CertificateOrder.objects.get(pk=configured.certificate_id)
    pages = [
        client.get(f"/admin/certificates/certificateorder/{order.pk}/change/"),
        client.get(f"/admin/provisioning/platform/{configured.pk}/change/"),
        client.get(f"/api/orders/{configured.service}/", headers={"Authorization": "Bearer t"}),
    ]
    for response in pages:
        assert response.status_code == 200
        text = response.content.decode()
        assert "PRIVATE KEY" not in text and order.key_encrypted[:40] not in text
    for message in mailbox.messages:
        assert "PRIVATE KEY" not in message.as_string()
    assert "PRIVATE KEY" not in order.key_encrypted


def test_check_deploy_passes_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.production",
        "SECRET_KEY": "x" * 64 + "-production-secret-from-the-environment",
        "ORDER_API_TOKEN": "token-from-the-environment-32-chars",
        "FIELD_ENCRYPTION_KEY": "Fr2s2YqWq7Ujq8QwnX5Yg7N0hJmC5hJ3bK9u1lq0tWs=",
        "ALLOWED_HOSTS": "portal.example.net",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "PORTAL_VAR_DIR": str(tmp_path),
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_a_missing_secret(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.production",
        "PORTAL_VAR_DIR": str(tmp_path),
    }
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
