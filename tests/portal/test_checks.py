"""Production refuses settings that would leave the portal open: ``manage.py check`` (run
by ``migrate`` too) fails with an error naming the setting."""

import os
import subprocess
import sys

import pytest

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "portal.production",
    "SECRET_KEY": "x" * 64 + "-production-secret-from-the-environment",
    "ORDER_API_TOKEN": "an-order-api-token-of-forty-characters-x",
    "FIELD_ENCRYPTION_KEY": "Fr2s2YqWq7Ujq8QwnX5Yg7N0hJmC5hJ3bK9u1lq0tWs=",
    "ALLOWED_HOSTS": "portal.example.net",
    "CACHE_URL": "redis://127.0.0.1:6379/1",
}


def check(tmp_path, **overrides) -> subprocess.CompletedProcess:
    env = {**os.environ, **PRODUCTION_ENV, "PORTAL_VAR_DIR": str(tmp_path), **overrides}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, check=False
    )


def test_production_settings_pass(tmp_path):
    result = check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"CACHE_URL": "locmemcache://"}, "portal.E002"),
        ({"TRUSTED_PROXIES": "127.0.0.2,not-a-proxy"}, "TRUSTED_PROXIES"),
        ({"ORDER_API_TOKEN": "change-me"}, "ORDER_API_TOKEN"),
        ({"ORDER_API_TOKEN": "x" * 31}, "ORDER_API_TOKEN"),
    ],
)
def test_production_refuses(tmp_path, overrides, message):
    result = check(tmp_path, **overrides)
    assert result.returncode != 0
    assert message in result.stderr


def test_per_process_counts_are_fine_without_rate_limits(tmp_path):
    result = check(tmp_path, CACHE_URL="locmemcache://", RATELIMIT_ENABLED="false")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("value", "refused"), [("short-metrics-token", True), ("", False), ("m" * 32, False)]
)
def test_every_token_setting_is_checked(settings, value, refused):
    """METRICS_TOKEN (the operations app's) like ORDER_API_TOKEN: optional, long if set."""
    from portal.checks import strong_tokens

    settings.PRODUCTION = True
    settings.METRICS_TOKEN = value
    errors = strong_tokens(None)
    assert [error.id for error in errors] == (["portal.E003"] if refused else [])
    if refused:
        assert "METRICS_TOKEN" in errors[0].msg
