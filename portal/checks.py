"""``manage.py check`` (and so ``migrate``) refuses settings that would leave the portal
open: an unreadable TRUSTED_PROXIES anywhere; in production rate-limit counts kept per
process and guessable tokens."""

from django.conf import settings
from django.core.checks import Error

PER_PROCESS_CACHES = ("django.core.cache.backends.locmem.LocMemCache",)
# Bearer tokens other systems send us; each may be unset (its endpoint is then closed).
TOKEN_SETTINGS = ("ORDER_API_TOKEN", "METRICS_TOKEN")
# 32 characters of a random token carry well over 128 bits.
MIN_TOKEN_LENGTH = 32


def trusted_proxies(app_configs, **kwargs) -> list[Error]:
    from portal.ratelimit import trusted_proxy_networks

    try:
        trusted_proxy_networks()
    except ValueError as error:
        return [Error(f"TRUSTED_PROXIES: {error}", id="portal.E001")]
    return []


def shared_rate_limit_counts(app_configs, **kwargs) -> list[Error]:
    if not (settings.PRODUCTION and settings.RATELIMIT_ENABLED):
        return []
    if settings.CACHES["default"]["BACKEND"] in PER_PROCESS_CACHES:
        return [
            Error(
                "CACHE_URL keeps rate-limit counts in each web process: every process "
                "would allow the full limit.",
                hint="Set CACHE_URL to the shared Redis, e.g. redis://redis:6379/1.",
                id="portal.E002",
            )
        ]
    return []


def strong_tokens(app_configs, **kwargs) -> list[Error]:
    if not settings.PRODUCTION:
        return []
    return [
        Error(
            f"{name} has {len(value)} characters: a token must have at least "
            f"{MIN_TOKEN_LENGTH} to resist guessing.",
            hint='Generate one: python -c "import secrets; print(secrets.token_urlsafe(32))"',
            id="portal.E003",
        )
        for name in TOKEN_SETTINGS
        if 0 < len(value := getattr(settings, name, "") or "") < MIN_TOKEN_LENGTH
    ]
