"""Rate limits per client address and per target (a platform, an account) on the pages a
guesser would hammer: login, the validation page and the orders API, and on the emails a
customer can ask for.

Fixed windows counted in Django's cache (Redis in production via CACHE_URL, so every
web process shares the counts). Failed logins per (user name, address) are django-axes'
(portal.auth); both take the client's address from ``client_address``."""

import contextlib
import functools
import ipaddress
import math
import time
from collections.abc import Callable
from datetime import UTC, timedelta

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.timesince import timeuntil
from django.utils.translation import gettext

from portal.sessions import CacheUnavailable, unavailable_page

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.cache
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def trusted_proxy_networks() -> tuple:
    """TRUSTED_PROXIES parsed; raises ValueError on an entry that is no address or CIDR."""
    return _networks(tuple(settings.TRUSTED_PROXIES))


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address (AXES_CLIENT_IP_CALLABLE too).

    REMOTE_ADDR, unless it is one of TRUSTED_PROXIES: then the right-most address of
    X-Forwarded-For that is not a trusted proxy. Everything left of it was written by the
    client and proves nothing; from anyone but a trusted proxy the header is ignored."""
    nearest = _address(request.META.get("REMOTE_ADDR", ""))
    if nearest is None:
        return None
    trusted = trusted_proxy_networks()
    if not any(nearest in network for network in trusted):
        return str(nearest)
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _address(hop)
        if address is None:
            break  # not what a proxy of ours writes: believe no further
        if not any(address in network for network in trusted):
            return str(address)
        nearest = address
    return str(nearest)


def _key(scope: str, identity: str, window: int) -> str:
    return f"ratelimit:{scope}:{identity}:{int(time.time() // window)}"


def _over(scope: str, identity: str, limit: int, window: int) -> int:
    """Counts one request; returns the seconds to wait when the limit is passed, else 0."""
    key = _key(scope, identity, window)
    try:
        cache.add(key, 0, timeout=window + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window + 1)
            count = 1
    except Exception as error:
        # Cache down: refused (a "try again" page), never let through uncounted.
        raise CacheUnavailable(str(error)) from error
    return window - int(time.time()) % window if count > limit else 0


def consume(*hits: tuple[str, str]) -> int:
    """Counts one action against each (scope, identity) of RATELIMITS; an action refused by
    one of them is counted by none, so refusals never push the next allowed time further.
    Returns the seconds to wait (0: allowed)."""
    if not settings.RATELIMIT_ENABLED:
        return 0
    counted = []
    for scope, identity in hits:
        limit, window = settings.RATELIMITS[scope]
        wait = _over(scope, identity, limit, window)
        counted.append((scope, identity, window))
        if wait:
            for done_scope, done_identity, done_window in counted:
                with contextlib.suppress(ValueError):  # the window ended meanwhile
                    cache.decr(_key(done_scope, done_identity, done_window))
            return wait
    return 0


def ratelimit(
    scope: str,
    *,
    methods: tuple[str, ...] = ("POST",),
    per_target: Callable[[HttpRequest, dict], str] | None = None,
    counts: Callable[[HttpRequest, dict], bool] | None = None,
    json: bool = False,
):
    """Refuse with 429 once a client address, or a target, made too many requests.

    ``counts`` says which requests are attempts: one it rejects (a malformed paste the
    form refuses before anything is checked) is neither counted nor refused."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if (
                request.method in methods
                and settings.RATELIMIT_ENABLED
                and (counts is None or counts(request, kwargs))
            ):
                limit, window = settings.RATELIMITS[scope]
                try:
                    wait = _over(scope, f"ip:{client_address(request)}", limit, window)
                    if not wait and per_target is not None:
                        target = per_target(request, kwargs)
                        wait = _over(scope, f"target:{target}", limit, window)
                except CacheUnavailable:
                    return _unavailable(request, json=json)
                if wait:
                    return _refused(request, wait, json=json)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def _unavailable(request: HttpRequest, *, json: bool) -> HttpResponse:
    if json:
        response = JsonResponse(
            {"error": "Temporarily unavailable; try again in a moment."}, status=503
        )
        response["Retry-After"] = "30"
        return response
    return unavailable_page(request)


def _refused(request: HttpRequest, wait: int, *, json: bool) -> HttpResponse:
    if json:
        response = JsonResponse(
            {"error": f"Too many requests; try again in {wait} seconds."}, status=429
        )
        response["Retry-After"] = str(wait)
        return response
    return rate_limited_page(request, wait)


def rate_limited_page(request: HttpRequest, wait: int) -> HttpResponse:
    response = render(
        request,
        "portal/rate_limited.html",
        {
            "wait_seconds": wait,
            "wait_minutes": math.ceil(wait / 60),
            "back_url": request.get_full_path(),
        },
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


def login_locked_out(
    request: HttpRequest, response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE. Each failure during a lockout restarts it, so the wait is
    the whole cool-off from now."""
    return rate_limited_page(request, int(settings.AXES_COOLOFF_TIME.total_seconds()))


def dcv_resend_wait(*, platform_id: int, account_id: int) -> int:
    """Counts one validation email asked for by the customer, per platform and per account
    (an operator's resend in admin is not counted); the seconds to wait, 0 when allowed."""
    return consume(
        ("dcv_resend", f"platform:{platform_id}"), ("dcv_resend_account", f"account:{account_id}")
    )


def try_again_message(wait: int) -> str:
    when = timezone.now() + timedelta(seconds=wait)
    return gettext(
        "You have asked for several validation e-mails in a short time. You can ask for a new "
        "validation e-mail again in %(delay)s (at %(time)s UTC); until then, use the code "
        "of the latest e-mail."
    ) % {"delay": timeuntil(when), "time": when.astimezone(UTC).strftime("%H:%M")}
