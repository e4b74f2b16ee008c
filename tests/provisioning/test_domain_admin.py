"""Mail domains for operators and support: the admin list and its filters, the platform's
page, the records email resent and audited, DKIM keys in the key rotation, the API's summary."""

import io

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from certificates import encryption
from notifications.models import Email
from notifications.services import render_email
from provisioning.models import DkimKey, Domain, Platform, PlatformEvent
from provisioning.selectors import domains_summary
from provisioning.services import domain_add
from provisioning.services.finalisation import ready_email_context
from tests.factories import AccountFactory
from tests.helpers import delivered_platform, work_off
from zones.dkim import dkim_public_key

pytestmark = pytest.mark.django_db
LIST = "/admin/provisioning/domain/"


def ready_platform(account) -> Platform:
    platform = delivered_platform(account)
    Platform.objects.filter(pk=platform.pk).update(
        state="ready", domain="example.com", server_name="mail.example.com"
    )
    platform.refresh_from_db()
    return platform


@pytest.fixture
def support_client(client):
    user = get_user_model().objects.create_user("sam", "sam@hoster.example", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Support"))
    client.force_login(user)
    return client


def add(platform, name, **choices) -> Domain:
    choices = {"mode": "authoritative", "relay_host": "", "dns_assist": False, **choices}
    return domain_add(platform_id=platform.pk, actor="test", name=name, **choices)


def test_support_lists_domains_filters_them_and_resends_the_records_email(support_client, mailbox):
    platform = ready_platform(AccountFactory(zones=["example.com"], language="en"))
    right = add(platform, "example.com")
    broken = add(platform, "shop.example.com")
    Domain.objects.filter(pk=broken.pk).update(records_bad=2)
    work_off()
    assert len(mailbox.wait_for(3)) == 3  # delivery, and a records email per domain

    page = support_client.get(LIST).content.decode()
    assert "example.com" in page and "shop.example.com" in page
    page = support_client.get(LIST, {"broken": "yes"}).content.decode()
    assert "shop.example.com" in page and f'">{right.name}<' not in page
    page = support_client.get(LIST, {"state__exact": "pending_records"}).content.decode()
    assert "shop.example.com" in page
    page = support_client.get(f"/admin/provisioning/platform/{platform.pk}/change/")
    assert "Mail domains" in page.content.decode()

    response = support_client.post(
        LIST,
        {"action": "resend_records_email", "_selected_action": [right.pk]},
    )
    assert response.status_code == 302
    work_off()
    messages = mailbox.wait_for(4)
    assert len(messages) == 4
    copy = Email.objects.get(resend_of__isnull=False)
    assert copy.requested_by == "staff:sam" and copy.kind == "domain_records"
    assert "example.com" in messages[-1]["Subject"]
    event = PlatformEvent.objects.filter(platform=platform, kind="email_domain_records").last()
    assert event.actor == "staff:sam" and "resent" in event.message


def test_dkim_private_keys_are_encrypted_and_rotated(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = [old]
    platform = ready_platform(AccountFactory(zones=["example.com"]))
    add(platform, "example.com")
    keys = list(DkimKey.objects.order_by("selector"))
    assert [key.active for key in keys] == [True, False]
    assert all("PRIVATE KEY" not in key.private_key_encrypted for key in keys)

    settings.FIELD_ENCRYPTION_KEY = [new, old]
    output = io.StringIO()
    call_command("rotate_encryption_keys", stdout=output)
    settings.FIELD_ENCRYPTION_KEY = [new]
    for key in DkimKey.objects.order_by("selector"):
        pem = encryption.decrypt(key.private_key_encrypted)
        assert dkim_public_key(pem) == key.public_key


def test_domains_summary_is_the_api_contract():
    platform = ready_platform(AccountFactory(zones=["example.com"]))
    add(platform, "example.com")
    outside = add(platform, "bücher.example", mode="non_authoritative", relay_host="mx.other.net")
    summary = domains_summary(platform)
    assert [(d["name"], d["mode"], d["state"]) for d in summary] == [
        ("example.com", "authoritative", "pending_records"),
        ("xn--bcher-kva.example", "non_authoritative", "pending_ownership"),
    ]
    for domain in summary:
        assert {tuple(sorted(r)) for r in domain["records"]} == {
            ("name", "status", "type", "value")
        }
        assert {r["status"] for r in domain["records"]} == {"unchecked"}
    ownership = summary[1]["records"][0]
    assert ownership["type"] == "CNAME"
    assert ownership["name"] == f"{outside.ownership_token}-check.xn--bcher-kva.example"
    assert ownership["value"] == settings.DOMAIN_CHECK_TARGET
    assert "CNAME" not in {r["type"] for r in summary[0]["records"]}
    types = [r["type"] for r in summary[0]["records"]]
    assert types == ["MX", "SRV", "TXT", "TXT", "TXT", "TXT"]  # SPF, 2 DKIM, DMARC


@pytest.mark.parametrize(("language", "words"), [("en", "Next step"), ("fr", "Prochaine étape")])
def test_the_ready_emails_next_step_links_to_the_domains_page(language, words):
    platform = ready_platform(AccountFactory(language=language))
    context = {"platform": platform, "account": platform.account}
    context.update(ready_email_context(platform))
    _subject, text, html = render_email(kind="ready", language=language, context=context)
    url = f"{settings.PORTAL_BASE_URL}/platforms/{platform.service}/domains/"
    next_step = next(line for line in text.splitlines() if line.startswith(words))
    assert next_step.endswith(url)
    assert f'href="{url}"' in html
