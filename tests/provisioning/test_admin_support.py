"""Operators and support staff in admin: stuck flags, resends, restricted actions, speed."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.models import Email
from provisioning.models import Account, Platform, PlatformEvent
from tests.factories import AccountFactory
from tests.helpers import delivered_platform, validating_platform, work_off

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/provisioning/platform/"


@pytest.fixture
def support_client(client):
    user = get_user_model().objects.create_user("sam", "sam@hoster.example", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Support"))
    client.force_login(user)
    return client


@pytest.fixture
def operator_client(client):
    operator = get_user_model().objects.create_superuser("olga", "olga@hoster.example", "pw")
    client.force_login(operator)
    return client


def test_support_resends_an_email_and_it_is_audited(support_client, mailbox):
    platform = delivered_platform(AccountFactory())
    page = support_client.get(f"{CHANGELIST}{platform.pk}/resend/").content.decode()
    assert 'value="delivery"' in page
    response = support_client.post(f"{CHANGELIST}{platform.pk}/resend/", {"kind": "delivery"})
    assert response.status_code == 302
    work_off()

    assert len(mailbox.wait_for(2)) == 2
    copy = Email.objects.get(resend_of__isnull=False)
    assert copy.requested_by == "staff:sam" and copy.status == "done"
    event = PlatformEvent.objects.filter(platform=platform, kind="email_delivery").last()
    assert event.actor == "staff:sam" and "resent" in event.message


def test_support_sees_but_cannot_change_or_cancel(support_client, mailbox):
    platform = delivered_platform(AccountFactory())
    detail = support_client.get(f"{CHANGELIST}{platform.pk}/change/")
    assert detail.status_code == 200
    page = detail.content.decode()
    assert "Resend an email" in page and 'name="_save"' not in page
    changelist = support_client.get(CHANGELIST).content.decode()
    assert "resend_email" in changelist
    assert "cancel_platforms" not in changelist and "retry_failed_stage" not in changelist

    response = support_client.post(
        CHANGELIST, {"action": "cancel_platforms", "_selected_action": [platform.pk]}
    )
    platform.refresh_from_db()
    assert platform.state == "awaiting_setup"
    assert response.status_code in (200, 302)


def test_support_cannot_see_certificates_or_keys(support_client):
    assert support_client.get("/admin/certificates/certificateorder/").status_code == 403
    assert support_client.get("/admin/certificates/certificateauthority/").status_code == 403


def test_without_the_permission_there_is_no_resend(client, mailbox):
    user = get_user_model().objects.create_user("viewer", "v@hoster.example", "pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_platform"))
    client.force_login(user)
    platform = delivered_platform(AccountFactory())
    assert "resend_email" not in client.get(CHANGELIST).content.decode()
    assert (
        "Resend an email" not in client.get(f"{CHANGELIST}{platform.pk}/change/").content.decode()
    )
    assert client.get(f"{CHANGELIST}{platform.pk}/resend/").status_code == 403
    assert (
        client.post(f"{CHANGELIST}{platform.pk}/resend/", {"kind": "delivery"}).status_code == 403
    )
    work_off()
    assert len(mailbox.messages) == 1


def test_a_kind_never_sent_cannot_be_resent(support_client, mailbox):
    platform = delivered_platform(AccountFactory())
    support_client.post(f"{CHANGELIST}{platform.pk}/resend/", {"kind": "ready"})
    assert not Email.objects.filter(kind="ready").exists()


def test_stuck_platforms_are_flagged_and_filtered(operator_client, mailbox, settings):
    stuck = delivered_platform(AccountFactory())
    fresh = delivered_platform(AccountFactory())
    Platform.objects.filter(pk=stuck.pk).update(state_changed_at=timezone.now() - timedelta(days=8))
    page = operator_client.get(CHANGELIST, {"stuck": "yes"}).content.decode()
    assert stuck.service in page and fresh.service not in page
    page = operator_client.get(CHANGELIST, {"stuck": "no"}).content.decode()
    assert fresh.service in page and stuck.service not in page
    assert "1\xa0week, 1\xa0day" in operator_client.get(CHANGELIST).content.decode()


def test_filters_by_dns_state_and_ca_backend(operator_client, mailbox):
    platform = delivered_platform(AccountFactory())
    page = operator_client.get(CHANGELIST, {"dns_state__exact": "pending"}).content.decode()
    assert platform.service in page
    page = operator_client.get(CHANGELIST, {"certificate__backend": "acme"}).content.decode()
    assert platform.service not in page


def _many_platforms(start: int, stop: int) -> None:
    accounts = Account.objects.bulk_create(
        Account(nic=f"bulk-{i}-ovh", email=f"b{i}@x.example") for i in range(start, stop, 10)
    )
    platforms = Platform.objects.bulk_create(
        Platform(
            account=accounts[i % len(accounts)],
            service=f"pex-bulk{i:06d}",
            order_number=2_000_000 + i,
            server_name=f"mail.d{i}.example",
        )
        for i in range(start, stop)
    )
    PlatformEvent.objects.bulk_create(
        PlatformEvent(platform=p, kind="ordered", actor="test") for p in platforms
    )


def _changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHANGELIST).status_code == 200
    return len(queries)


def test_changelist_queries_do_not_grow_with_the_table(operator_client):
    _many_platforms(0, 10)
    at_ten = _changelist_queries(operator_client)
    _many_platforms(10, 1000)
    at_thousand = _changelist_queries(operator_client)
    assert at_ten == at_thousand
    assert at_thousand <= 12


def test_operator_downloads_the_chain_never_the_key(operator_client, mailbox, bind, settings):
    from provisioning.services import platform_dcv_submit

    bind.configure(settings)
    platform = validating_platform(AccountFactory(), domain="chain.example")
    body = mailbox.with_subject("Domain Control Validation")[0].get_body(("plain",)).get_content()
    code = re.search(r"^\s{4}(\S+)\s*$", body, re.M).group(1)
    result = platform_dcv_submit(platform_id=platform.pk, code=code, actor="test")
    assert result.outcome == "valid"
    detail = operator_client.get(f"{CHANGELIST}{platform.pk}/change/").content.decode()
    assert "Download the chain" in detail
    chain = operator_client.get(f"{CHANGELIST}{platform.pk}/certificate-chain.pem")
    assert chain.status_code == 200
    assert chain.content.decode().count("BEGIN CERTIFICATE") == 2
    assert b"PRIVATE KEY" not in chain.content


def test_support_switches_the_validation_address(support_client, mailbox, bind, settings):
    bind.configure(settings)
    platform = validating_platform(AccountFactory(), domain="switch.example")
    page = support_client.get(f"{CHANGELIST}{platform.pk}/resend/").content.decode()
    assert 'value="postmaster@switch.example"' in page
    support_client.post(
        f"{CHANGELIST}{platform.pk}/resend/",
        {"kind": "dcv", "address": "postmaster@switch.example"},
    )
    work_off()
    resent = mailbox.with_subject("Domain Control Validation")[-1]
    assert resent["To"] == "postmaster@switch.example"
    platform.refresh_from_db()
    assert platform.validation_email == "postmaster@switch.example"
    assert platform.events.filter(kind="validation_email_changed", actor="staff:sam").exists()

    support_client.post(
        f"{CHANGELIST}{platform.pk}/resend/", {"kind": "dcv", "address": "evil@attacker.example"}
    )
    platform.refresh_from_db()
    assert platform.validation_email == "postmaster@switch.example"
