import pytest
from django.contrib.auth import get_user_model

from provisioning.models import Platform
from provisioning.services import platform_fail
from tests.factories import AccountFactory
from tests.helpers import delivered_platform

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    operator = get_user_model().objects.create_superuser("operator", "op@hoster.example", "pw")
    client.force_login(operator)
    return client


def test_changelist_shows_the_orders(operator_client, mailbox):
    platform = delivered_platform(AccountFactory(nic="xx-44444-ovh"))
    page = operator_client.get("/admin/provisioning/platform/").content.decode()
    assert platform.service in page and "xx-44444-ovh" in page
    assert "Awaiting setup" in page and "email_delivery (" in page  # last event column


@pytest.mark.parametrize("query", ["xx-55555", "@customer.example", "pex-"])
def test_search_by_nic_email_service(operator_client, mailbox, query):
    platform = delivered_platform(AccountFactory(nic="xx-55555-ovh"))
    page = operator_client.get("/admin/provisioning/platform/", {"q": query}).content.decode()
    assert platform.service in page


def test_filter_by_state(operator_client, mailbox):
    platform = delivered_platform(AccountFactory())
    page = operator_client.get(
        "/admin/provisioning/platform/", {"state__exact": "ready"}
    ).content.decode()
    assert platform.service not in page
    page = operator_client.get(
        "/admin/provisioning/platform/",
        {"state__exact": "awaiting_setup", "dns_assist__exact": "0"},
    ).content.decode()
    assert platform.service in page


def test_detail_shows_timeline_and_emails_read_only(operator_client, mailbox):
    platform = delivered_platform(AccountFactory())
    page = operator_client.get(f"/admin/provisioning/platform/{platform.pk}/change/").content
    page = page.decode()
    assert "Timeline" in page and "email_delivery" in page
    assert "est en cours de livraison" in page
    assert 'name="state"' not in page  # the state is not editable


def test_retry_action_resumes_a_failed_platform(operator_client, mailbox):
    platform = delivered_platform(AccountFactory())
    platform_fail(platform_id=platform.pk, reason="DNS server unreachable")
    response = operator_client.post(
        "/admin/provisioning/platform/",
        {"action": "retry_failed_stage", "_selected_action": [platform.pk]},
        follow=True,
    )
    assert "retried" in response.content.decode()
    platform = Platform.objects.get(pk=platform.pk)
    assert platform.state == "awaiting_setup"
    assert platform.events.filter(kind="awaiting_setup", actor="staff:operator").exists()


def test_email_preview_is_rendered_in_a_sandbox(operator_client, mailbox):
    platform = delivered_platform(AccountFactory())
    email = platform.emails.get()
    page = operator_client.get(f"/admin/notifications/email/{email.pk}/change/").content.decode()
    assert '<iframe sandbox="" srcdoc="' in page
    assert "Configurer ma plateforme" in page


def test_operators_suspend_resume_and_terminate_after_confirming(operator_client, mailbox):
    platform = delivered_platform(AccountFactory())
    changelist = "/admin/provisioning/platform/"
    chosen = {"_selected_action": [platform.pk]}

    confirm = operator_client.post(changelist, {"action": "suspend_platforms", **chosen})
    assert "Suspend these platforms?" in confirm.content.decode()
    assert Platform.objects.get(pk=platform.pk).state == "awaiting_setup"  # not yet
    done = operator_client.post(
        changelist,
        {"action": "suspend_platforms", "confirmed": "yes", "reason": "Unpaid", **chosen},
        follow=True,
    )
    assert "suspended" in done.content.decode()
    platform.refresh_from_db()
    assert (platform.state, platform.suspension_reason) == ("suspended", "Unpaid")
    assert platform.events.filter(kind="suspended", actor="staff:operator").exists()

    operator_client.post(changelist, {"action": "resume_platforms", "confirmed": "yes", **chosen})
    assert Platform.objects.get(pk=platform.pk).state == "awaiting_setup"

    confirm = operator_client.post(changelist, {"action": "terminate_platforms", **chosen})
    assert "cannot be undone" in confirm.content.decode()
    operator_client.post(
        changelist, {"action": "terminate_platforms", "confirmed": "yes", **chosen}
    )
    assert Platform.objects.get(pk=platform.pk).state == "terminated"
