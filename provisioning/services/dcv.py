"""The certificate authority's validation email, for the platform's first certificate order
and for each renewal: one builder, so that both read alike."""

from django.conf import settings

from certificates.models import CertificateOrder
from notifications.models import Email
from notifications.services import Secret
from provisioning import links
from provisioning.models import Platform
from provisioning.services.common import queue_platform_email


def dcv_email(
    platform: Platform,
    order: CertificateOrder,
    code: str,
    *,
    resend_of: Email | None,
    actor: str,
) -> Email:
    """The order's code and its page's link, to the order's validation address, in the
    account's language. The first order's email is the platform's (sent again, as a copy,
    when the customer chose again after another platform took the name); a renewal's has
    its order as target, one per renewal order."""
    renewal = order.renewal_of_id is not None
    return queue_platform_email(
        platform,
        "dcv",
        recipient=order.validation_email,
        context={
            "order_number": order.order_number,
            "server_name": order.server_name,
            "validation_email": order.validation_email,
            "code": Secret(code),
            "dcv_url": links.dcv_link(platform, order.order_number),
            "expires_at": order.dcv_code_expires_at,
            "max_attempts": settings.DCV_MAX_ATTEMPTS,
        },
        sender=settings.DCV_FROM_EMAIL,
        resend_of=resend_of,
        actor=actor,
        new_setup=not renewal and resend_of is None,
        target=order if renewal else None,
    )
