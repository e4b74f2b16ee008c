"""Sessions kept in the database, with a copy in the shared cache (Redis in production).

Every logged-in request reads its session; with a copy in the cache that read costs no SQL.
The database row stays the truth, and a copy is never allowed to outlive a change it missed:

- a deletion (logout, a new key at login or at a password change) first replaces the copy by
  a tombstone, then deletes the row. When the cache cannot be reached, nothing is deleted:
  ``SessionCacheUnavailable`` becomes a clear "try again" page (``SessionMiddleware``
  below) and the customer is still logged in. A copy read from the database while the row
  is being deleted cannot come back either: copies read from the database are written with
  ``add``, which a tombstone refuses;
- a change to the data deletes the copy first (or fails the same way), writes the row, then
  writes the new copy (if that fails, reads go to the database until the next change);
- reading while the cache is down falls back to the database, and writes no copy.

The engine is chosen in portal/settings.py only when the cache is shared by every web
process: a copy in one process's memory would outlive a logout served by another.
"""

import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.shortcuts import render

logger = logging.getLogger(__name__)

KEY_PREFIX = "portal.session:"
TOMBSTONE = "deleted"


class CacheUnavailable(Exception):
    """The shared cache did not answer where the request cannot do without it."""


class SessionCacheUnavailable(CacheUnavailable):
    """A session could not be deleted or changed because its cached copy could not be."""


class SessionStore(DatabaseStore):
    def __init__(self, session_key=None):
        self._cache = caches[settings.SESSION_CACHE_ALIAS]
        super().__init__(session_key)

    def _copy_key(self, session_key: str) -> str:
        return KEY_PREFIX + session_key

    def load(self) -> dict:
        key = self._copy_key(self._get_or_create_session_key())
        try:
            data = self._read_copy(key)
        except Exception:  # any cache failure: the database answers
            logger.warning("Session cache unreachable: session read from the database")
            return super().load()
        if data == TOMBSTONE:
            self._session_key = None
            return {}
        if data is not None:
            return data
        row = self._get_session_from_db()
        if row is None:
            return {}
        data = self.decode(row.session_data)
        try:
            self._cache.add(key, data, self.get_expiry_age(expiry=row.expire_date))
        except Exception:
            logger.warning("Session cache unreachable: no copy kept")
        return data

    def _read_copy(self, key: str):
        """The cache's get. On Django's Redis cache, through one redis-py client kept with
        the cache: its get() makes a new client on every call, which cost more CPU than the
        read itself (51 of 135 µs)."""
        client = getattr(self._cache, "_portal_session_client", None)
        if client is None:
            backend = getattr(self._cache, "_cache", None)
            if not isinstance(self._cache, RedisCache) or not hasattr(backend, "get_client"):
                return self._cache.get(key)
            client = (backend.get_client(), backend._serializer)
            self._cache._portal_session_client = client
        redis_client, serializer = client
        value = redis_client.get(self._cache.make_and_validate_key(key))
        return None if value is None else serializer.loads(value)

    def exists(self, session_key: str) -> bool:
        try:
            if session_key and self._cache.get(self._copy_key(session_key)) is not None:
                return True  # a tombstone too: a deleted session's key is not given again
        except Exception:
            logger.warning("Session cache unreachable: key checked in the database")
        return super().exists(session_key)

    def save(self, must_create: bool = False) -> None:
        if self.session_key is not None and not must_create:
            self._forget_copy(self.session_key, replace_with=None)
        super().save(must_create)
        try:
            self._cache.set(self._copy_key(self.session_key), self._session, self.get_expiry_age())
        except Exception:  # the copy is gone: reads use the database
            logger.warning("Session cache unreachable: no copy kept")

    def delete(self, session_key: str | None = None) -> None:
        session_key = session_key or self.session_key
        if session_key is None:
            return
        self._forget_copy(session_key, replace_with=TOMBSTONE)
        super().delete(session_key)

    def _forget_copy(self, session_key: str, *, replace_with: str | None) -> None:
        key = self._copy_key(session_key)
        try:
            if replace_with is None:
                self._cache.delete(key)
            else:
                # As long as any session may live: the tombstone outlasts every copy.
                self._cache.set(key, replace_with, settings.SESSION_COOKIE_AGE)
        except Exception as error:
            raise SessionCacheUnavailable(str(error)) from error

    # Django's async variants would bypass the copy: they run the rules above instead.
    async def aload(self) -> dict:
        return await sync_to_async(self.load)()

    async def aexists(self, session_key: str) -> bool:
        return await sync_to_async(self.exists)(session_key)

    async def asave(self, must_create: bool = False) -> None:
        await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key: str | None = None) -> None:
        await sync_to_async(self.delete)(session_key)


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's, with a clear page when a session cannot be changed, or a view cannot count
    a rate limit, because the cache is down (instead of an error): nothing was changed, the
    customer can try again."""

    def process_exception(self, request, exception):
        if isinstance(exception, CacheUnavailable):
            return unavailable_page(request)
        return None

    def process_response(self, request, response):
        try:
            return super().process_response(request, response)
        except SessionCacheUnavailable:
            return unavailable_page(request)


def unavailable_page(request):
    logger.error("Cache unreachable: the request was refused, nothing changed")
    response = render(request, "portal/unavailable.html", status=503)
    response["Retry-After"] = "30"
    return response
