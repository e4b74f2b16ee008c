"""Step 4 on the validation page: codes pasted by the customer, lockout, resend, links."""

import re
import time
from unittest import mock

import pytest
from django.test import Client

from provisioning import links
from provisioning.models import Platform
from provisioning.services import platform_configure
from tests.conftest import text_body
from tests.factories import AccountFactory
from tests.helpers import delivered_platform, validating_platform, work_off

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(mailbox, bind, settings):
    """A platform waiting for its validation code, its customer's client and the email."""
    bind.configure(settings)
    platform = validating_platform(AccountFactory(language="en"), domain="client.example")
    assert platform.state == "certificate_pending"
    client = Client()
    client.force_login(platform.account.users.get())
    [email] = mailbox.with_subject("Domain Control Validation")
    return platform, client, email


def code_and_path(message) -> tuple[str, str]:
    body = text_body(message)
    code = re.search(r"^\s{4}(\S+)\s*$", body, re.M).group(1)
    path = re.search(r"https?://[^/\s]+(/dcv/\S+/)", body).group(1)
    return code, path


def test_code_is_at_least_112_bits_in_readable_groups(pending):
    code, _ = code_and_path(pending[2])
    groups = code.split("-")
    assert len(groups) >= 4 and all(len(g) == len(groups[0]) for g in groups)
    assert len("".join(groups)) * 5 >= 112  # base32: 5 bits a character


def test_page_shows_the_form_with_next_and_close(pending):
    platform, client, email = pending
    _, path = code_and_path(email)
    page = client.get(path).content.decode()
    assert f"Order #{platform.order_number}" in page
    assert 'name="code"' in page and ">Next<" in page and "Close window" in page


def test_pasted_code_with_spaces_dashes_and_lower_case_is_valid(pending):
    platform, client, email = pending
    code, path = code_and_path(email)
    page = client.post(path, {"code": f"  {code.lower().replace('-', ' - ')}  "}).content.decode()
    assert "The code is valid" in page
    platform.refresh_from_db()
    assert platform.state == "finalising"
    assert platform.certificate.serial


@pytest.mark.parametrize("wrong", ["AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", "not a code", ""])
def test_wrong_code_is_refused_and_changes_nothing(pending, wrong):
    platform, client, email = pending
    _, path = code_and_path(email)
    response = client.post(path, {"code": wrong})
    assert response.status_code == 400
    page = response.content.decode()
    assert "not valid" in page or "could not be read" in page or "required" in page
    platform.refresh_from_db()
    assert platform.state == "certificate_pending" and not platform.certificate.serial


def test_five_wrong_codes_lock_until_a_new_email(pending, mailbox):
    platform, client, email = pending
    code, path = code_and_path(email)
    for _attempt in range(5):
        page = client.post(path, {"code": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"}).content.decode()
    assert "locked" in page
    page = client.post(path, {"code": code}).content.decode()  # even the right code
    assert "locked" in page
    platform.refresh_from_db()
    assert platform.state == "certificate_pending"
    assert platform.events.filter(kind="dcv_locked").exists()

    status = client.get(f"/platforms/{platform.service}/").content.decode()
    assert "Validation is locked" in status
    client.post(f"/platforms/{platform.service}/resend-validation/", {"validation_email": ""})
    work_off()
    fresh = mailbox.with_subject("Domain Control Validation")[-1]
    new_code, new_path = code_and_path(fresh)
    assert new_code != code
    assert "The code is valid" not in client.post(new_path, {"code": code}).content.decode()
    assert "The code is valid" in client.post(new_path, {"code": new_code}).content.decode()


def test_switching_to_another_offered_address(pending, mailbox):
    platform, client, email = pending
    old_code, _ = code_and_path(email)
    response = client.post(
        f"/platforms/{platform.service}/resend-validation/",
        {"validation_email": "webmaster@client.example"},
        follow=True,
    )
    assert "on its way to webmaster@client.example" in response.content.decode()
    work_off()
    resent = mailbox.with_subject("Domain Control Validation")[-1]
    assert resent["To"] == "webmaster@client.example"
    platform.refresh_from_db()
    assert platform.validation_email == "webmaster@client.example"
    _, path = code_and_path(resent)
    assert "The code is valid" not in client.post(path, {"code": old_code}).content.decode()


def test_an_address_outside_the_list_is_refused(pending, mailbox):
    platform, client, _ = pending
    response = client.post(
        f"/platforms/{platform.service}/resend-validation/",
        {"validation_email": "attacker@evil.example"},
        follow=True,
    )
    assert "Select a valid choice" in response.content.decode()
    platform.refresh_from_db()
    assert platform.validation_email == "admin@client.example"
    assert len(mailbox.with_subject("Domain Control Validation")) == 1


def test_expired_code(pending):
    platform, client, email = pending
    code, path = code_and_path(email)
    from django.utils import timezone

    from certificates.models import CertificateOrder

    CertificateOrder.objects.filter(pk=platform.certificate_id).update(
        dcv_code_expires_at=timezone.now()
    )
    page = client.post(path, {"code": code}).content.decode()
    assert "no longer valid" in page
    platform.refresh_from_db()
    assert platform.state == "certificate_pending"


def test_code_of_another_platform_is_invalid(pending, mailbox):
    platform, client, email = pending
    _own_code, path = code_and_path(email)
    other = delivered_platform(platform.account)
    platform_configure(
        platform_id=other.pk,
        actor="test",
        subdomain="mail",
        domain="other.example",
        validation_email="admin@other.example",
        dns_assist=False,
    )
    work_off()
    other_email = next(
        m
        for m in mailbox.with_subject("Domain Control Validation")
        if "other.example" in m["Subject"]
    )
    other_code, _ = code_and_path(other_email)
    assert "not valid" in client.post(path, {"code": other_code}).content.decode()
    assert Platform.objects.get(pk=platform.pk).state == "certificate_pending"


def test_link_with_a_changed_order_number_is_refused(pending):
    platform, client, email = pending
    _, path = code_and_path(email)
    changed = path.replace(f"/dcv/{platform.order_number}/", f"/dcv/{platform.order_number + 1}/")
    response = client.get(changed)
    assert response.status_code == 400
    assert "not valid" in response.content.decode()


def test_another_accounts_validation_page_is_404(pending):
    _platform, _, email = pending
    _, path = code_and_path(email)
    stranger = Client()
    stranger.force_login(AccountFactory().users.get())
    assert stranger.get(path).status_code == 404
    assert stranger.post(path, {"code": "x"}).status_code == 404


def test_validation_link_requires_a_login(pending):
    _, _, email = pending
    _, path = code_and_path(email)
    response = Client().get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_expired_validation_link(pending):
    platform, client, _ = pending
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 31 * 86400):
        token = links.dcv_token(platform)
    response = client.get(f"/dcv/{platform.order_number}/{token}/")
    assert response.status_code == 410


def test_issued_certificate_is_shown_and_its_chain_downloads(pending):
    platform, client, email = pending
    code, path = code_and_path(email)
    client.post(path, {"code": code})
    platform.refresh_from_db()
    status = client.get(f"/platforms/{platform.service}/").content.decode()
    assert platform.certificate.serial in status and "Valid until" in status
    chain = client.get(f"/platforms/{platform.service}/certificate-chain.pem")
    assert chain.status_code == 200
    body = chain.content.decode()
    assert body.count("BEGIN CERTIFICATE") == 2
    assert "PRIVATE KEY" not in body
