"""Sessions with a copy in the shared cache (portal.sessions, on a real Redis): a
logged-in page reads no session row, and yet logging out, a password change, a
deactivation and a new language take effect at the very next request; with the cache down
pages are served from the database and a change that cannot be made says so clearly.

The web is Django's test client in this process; the cache is a redis-server (the test
Redis, or a private one that the test stops or freezes)."""

import pytest
import redis
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import cache

from portal import sessions
from provisioning.models import Account
from tests.factories import PASSWORD, AccountFactory
from tests.processes import REDIS_URL, RedisServer

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def use_cache(settings, url: str) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
    }
    settings.SESSION_ENGINE = "portal.sessions"
    settings.RATELIMIT_ENABLED = False  # the login's counters live in the same cache


@pytest.fixture
def shared_cache(settings):
    redis.Redis.from_url(REDIS_URL).flushdb()
    use_cache(settings, REDIS_URL)
    yield
    redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture
def private_redis(tmp_path, settings):
    """A redis-server of the test's own as the cache: the test stops or freezes it."""
    from harness.processes import free_port

    server = RedisServer(port=free_port(), directory=tmp_path)
    server.start()
    use_cache(settings, server.url)
    yield server
    server.stop()


@pytest.fixture
def account():
    return AccountFactory(language="en")


def log_in(client, account) -> str:
    response = client.post("/login/", {"username": account.nic, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client.cookies["sessionid"].value


def is_logged_in(client) -> bool:
    response = client.get("/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def test_a_logged_in_page_reads_the_session_from_its_copy(
    client, account, shared_cache, django_assert_num_queries
):
    key = log_in(client, account)
    assert cache.get(sessions.KEY_PREFIX + key)["_auth_user_id"] == str(account.users.get().pk)
    client.get("/")
    # The user with the account's language, and the page's own two; no django_session.
    with django_assert_num_queries(3) as captured:
        assert client.get("/").status_code == 200
    assert not any("django_session" in q["sql"] for q in captured.captured_queries)


def test_logging_out_takes_effect_at_once(client, account, shared_cache):
    key = log_in(client, account)
    assert is_logged_in(client)
    assert client.post("/logout/").status_code == 302
    assert cache.get(sessions.KEY_PREFIX + key) == sessions.TOMBSTONE
    assert not Session.objects.filter(session_key=key).exists()
    client.cookies["sessionid"] = key  # the old cookie, replayed
    assert not is_logged_in(client)


def test_a_copy_read_while_the_session_is_deleted_does_not_come_back(client, account, shared_cache):
    """A request that missed the copy and read the row just before a logout deleted it
    writes its copy with add(): the tombstone wins whichever comes last."""
    key = log_in(client, account)
    copy_key = sessions.KEY_PREFIX + key
    stale = cache.get(copy_key)
    cache.delete(copy_key)
    client.post("/logout/")
    cache.add(copy_key, stale, 3600)  # the slow reader's copy arrives after the logout
    client.cookies["sessionid"] = key
    assert not is_logged_in(client)


def test_a_password_changed_elsewhere_logs_the_session_out(client, account, shared_cache):
    log_in(client, account)
    assert is_logged_in(client)
    user = account.users.get()
    user.set_password("another-long-password-42")
    user.save()
    assert not is_logged_in(client)


def test_a_user_deactivated_in_admin_is_logged_out(client, account, shared_cache):
    log_in(client, account)
    assert is_logged_in(client)
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "root-pass-123")
    staff = type(client)()
    staff.force_login(admin)
    user = account.users.get()
    page = staff.get(f"/admin/auth/user/{user.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name not in ("password", "groups", "user_permissions")
    }
    data.update(is_active="", last_login_0="", last_login_1="", date_joined_0="2026-01-01")
    data.update(date_joined_1="00:00:00")
    response = staff.post(f"/admin/auth/user/{user.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert not get_user_model().objects.get(pk=user.pk).is_active
    assert not is_logged_in(client)


def test_a_new_language_shows_at_the_next_page(client, account, shared_cache):
    log_in(client, account)
    assert 'lang="en"' in client.get("/").content.decode()
    Account.objects.filter(pk=account.pk).update(language="fr")
    assert 'lang="fr"' in client.get("/").content.decode()


def test_with_the_cache_down_pages_are_served_from_the_database(client, account, private_redis):
    key = log_in(client, account)
    private_redis.stop()
    assert is_logged_in(client)
    assert Session.objects.filter(session_key=key).exists()


def test_with_the_cache_down_logging_out_is_refused_clearly_and_changes_nothing(
    client, account, private_redis
):
    key = log_in(client, account)
    private_redis.stop()
    response = client.post("/logout/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "Try again in a moment" in page
    assert "Nothing was changed" in page
    assert Session.objects.filter(session_key=key).exists()
    assert is_logged_in(client)
    # Back up (empty, as a restarted Redis without persistence): logging out works.
    private_redis.start()
    assert client.post("/logout/").status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    client.cookies["sessionid"] = key
    assert not is_logged_in(client)


def test_a_cache_that_hangs_does_not_keep_a_logged_out_copy(client, account, private_redis):
    """Frozen (a network partition): the logout times out and is refused; once the cache
    answers again, the session is whole in both places, and logging out then works."""
    key = log_in(client, account)
    private_redis.pause()
    try:
        assert client.post("/logout/").status_code == 503
        assert is_logged_in(client)  # read from the database after the timeout
    finally:
        private_redis.resume()
    assert Session.objects.filter(session_key=key).exists()
    assert cache.get(sessions.KEY_PREFIX + key) is not None
    assert client.post("/logout/").status_code == 302
    client.cookies["sessionid"] = key
    assert not is_logged_in(client)


def test_with_the_cache_down_a_login_is_refused_clearly_not_let_through_uncounted(
    client, account, private_redis, settings
):
    """The login's per-address limit is counted in the cache: down, the login is refused
    with the "try again" page (never an error page, never an uncounted attempt)."""
    settings.RATELIMIT_ENABLED = True
    private_redis.stop()
    response = client.post("/login/", {"username": account.nic, "password": PASSWORD})
    assert response.status_code == 503
    assert "Try again in a moment" in response.content.decode()
    assert "sessionid" not in response.cookies
    private_redis.start()
    assert (
        client.post("/login/", {"username": account.nic, "password": PASSWORD}).status_code == 302
    )
    assert is_logged_in(client)
