"""The admin's first page: the fleet's counts, each a link to the matching list, and the
chart of the last 30 days drawn on the server without script or inline style."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from provisioning.models import Platform

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    operator = get_user_model().objects.create_superuser("olga", "olga@hoster.example", "pw")
    client.force_login(operator)
    return client


def fleet_panel(page: str) -> str:
    match = re.search(r'<div class="module fleet" id="fleet">(.*?)</div>', page, re.S)
    assert match, "no fleet panel on the page"
    return match.group(1)


def link_to(panel: str, label: str) -> tuple[int, str]:
    """(count, href) of the panel's link whose text ends with label."""
    match = re.search(
        r'<a href="([^"]+)"><span class="fleet-count">(\d+)</span>' + re.escape(label) + "</a>",
        panel,
    )
    assert match, f"no link for {label!r}"
    return int(match.group(2)), unescape(match.group(1))


def test_counts_link_to_the_lists_they_count(operator_client, fleet, settings):
    settings.PLATFORM_STUCK_AFTER = {"configured": 600, "failed": 0}
    old = timezone.now() - timedelta(days=2)
    fleet.platform("ready")
    fleet.platform("ready")
    stuck = fleet.platform("configured", since=old)
    fleet.platform("configured")
    failed_today = fleet.platform("failed", since=timezone.now() - timedelta(hours=3))
    fleet.platform("failed", since=old)
    soon = fleet.certificate("soon.example", expires_in_days=5)
    fleet.certificate("later.example", expires_in_days=60)

    panel = fleet_panel(operator_client.get("/admin/").content.decode())

    count, url = link_to(panel, "Ready")
    assert count == 2
    listed = operator_client.get(url).content.decode()
    assert "2 platforms" in listed

    count, url = link_to(panel, "Stuck")
    assert count == 3  # the configured one and both failed (failed: stuck at once)
    listed = operator_client.get(url).content.decode()
    assert stuck.service in listed and "3 platforms" in listed

    count, url = link_to(panel, "Failed in the last 24 hours")
    assert count == 1
    listed = operator_client.get(url)
    assert listed.status_code == 200
    assert failed_today.service in listed.content.decode()
    assert "1 platform" in listed.content.decode()

    count, url = link_to(panel, "Certificates expiring within 14 days")
    assert count == 1
    listed = operator_client.get(url).content.decode()
    assert soon.server_name in listed and "later.example" not in listed


def test_chart_of_orders_and_time_to_ready_without_inline_style(operator_client, fleet):
    today = fleet.platform("ready")
    ordered = timezone.now() - timedelta(hours=6)
    Platform.objects.filter(pk=today.pk).update(created_at=ordered, ready_at=timezone.now())
    fleet.platform("awaiting_setup")
    page = operator_client.get("/admin/").content.decode()
    svg = re.search(r"<svg class=\"fleet-chart\".*?</svg>", page, re.S).group(0)
    assert svg.count('class="fleet-chart-bar"') == 30
    assert f"{timezone.now():%d %b}: 2 orders, median 6.0 h to ready" in svg
    assert 'class="fleet-chart-line"' in svg
    assert "style=" not in page.split('id="fleet"')[1].split("</svg>")[0]
    assert "<style" not in page and "<script" not in svg
    assert "operations/fleet.css" in page


def test_staff_without_the_platforms_do_not_see_the_fleet(client, fleet):
    clerk = get_user_model().objects.create_user("cid", "c@hoster.example", "pw", is_staff=True)
    client.force_login(clerk)
    page = client.get("/admin/").content.decode()
    assert 'id="fleet"' not in page


def test_support_staff_see_the_fleet(client, fleet):
    user = get_user_model().objects.create_user("sam", "s@hoster.example", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Support"))
    client.force_login(user)
    assert 'id="fleet"' in client.get("/admin/").content.decode()
