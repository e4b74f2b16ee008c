"""The fleet at a glance on the admin's first page (templates/admin/index.html)."""

from datetime import timedelta
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils import timezone

from certificates.models import CertificateOrder
from operations import selectors
from operations.chart import orders_chart
from provisioning.models import PlatformState

register = template.Library()

EXPIRING_SOON_DAYS = 14
FAILED_WITHIN = timedelta(hours=24)


def _when(moment) -> str:
    return moment.isoformat(timespec="seconds")


@register.inclusion_tag("operations/fleet_overview.html", takes_context=True)
def fleet_overview(context) -> dict:
    request = context["request"]
    if not request.user.has_perm("provisioning.view_platform"):
        return {"shown": False}
    now = timezone.now()
    platforms = reverse("admin:provisioning_platform_changelist")
    totals = dict.fromkeys(PlatformState.values, 0)
    counts = selectors.platform_counts(now=now)
    totals.update(counts["state"])
    stuck = sum(counts["stuck"].values())
    by_state = [
        {
            "label": state.label,
            "count": totals[state.value],
            "url": f"{platforms}?{urlencode({'state__exact': state.value})}",
        }
        for state in PlatformState
    ]
    since = now - FAILED_WITHIN
    failed_query = {"state__exact": PlatformState.FAILED, "state_changed_at__gte": _when(since)}
    soon = now + timedelta(days=EXPIRING_SOON_DAYS)
    certificates = selectors.certificate_counts(now=now)["expiring"]
    expiring = sum(certificates[EXPIRING_SOON_DAYS, renewal] for renewal in ("none", "under_way"))
    expiring_query = {
        "status__exact": CertificateOrder.Status.ISSUED,
        "not_after__gt": _when(now),
        "not_after__lte": _when(soon),
    }
    return {
        "shown": True,
        "by_state": by_state,
        "stuck": {"count": stuck, "url": f"{platforms}?stuck=yes"},
        "failed": {
            "count": selectors.platforms_failed_since(since=since),
            "url": f"{platforms}?{urlencode(failed_query)}",
        },
        "expiring": {
            "count": expiring,
            "days": EXPIRING_SOON_DAYS,
            "url": reverse("admin:certificates_certificateorder_changelist")
            + "?"
            + urlencode(expiring_query),
        },
        "chart": orders_chart(selectors.orders_by_day(today=now.date())),
    }
