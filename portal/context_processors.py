"""Values every customer page shows."""

from django.conf import settings
from django.http import HttpRequest


def support(request: HttpRequest) -> dict:
    """The hoster's support contact (SUPPORT_URL, SUPPORT_EMAIL), each empty when unset."""
    return {"support_url": settings.SUPPORT_URL, "support_email": settings.SUPPORT_EMAIL}
