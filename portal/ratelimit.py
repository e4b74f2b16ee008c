"""Rate limits per client address and per target (a platform, an account) on the pages a
guesser would hammer: login, the validation page and the orders API.

Fixed windows counted in Django's cache (Redis in production via CACHE_URL, so every
web process shares the counts)."""

import functools
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def _over(scope: str, identity: str, limit: int, window: int) -> int:
    """Counts one request; returns the seconds to wait when the limit is passed, else 0."""
    slot = int(time.time() // window)
    key = f"ratelimit:{scope}:{identity}:{slot}"
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 1)
        count = 1
    return window - int(time.time()) % window if count > limit else 0


def ratelimit(
    scope: str,
    *,
    methods: tuple[str, ...] = ("POST",),
    per_target: Callable[[HttpRequest, dict], str] | None = None,
    json: bool = False,
):
    """Refuse with 429 once a client address, or a target, made too many requests."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method in methods and settings.RATELIMIT_ENABLED:
                limit, window = settings.RATELIMITS[scope]
                wait = _over(scope, f"ip:{client_address(request)}", limit, window)
                if not wait and per_target is not None:
                    target = per_target(request, kwargs)
                    wait = _over(scope, f"target:{target}", limit, window)
                if wait:
                    return _refused(request, wait, json=json)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def _refused(request: HttpRequest, wait: int, *, json: bool) -> HttpResponse:
    if json:
        response = JsonResponse(
            {"error": f"Too many requests; try again in {wait} seconds."}, status=429
        )
    else:
        response = render(request, "portal/rate_limited.html", {"wait": wait}, status=429)
    response["Retry-After"] = str(wait)
    return response
