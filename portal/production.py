"""Production settings: DJANGO_SETTINGS_MODULE=portal.production.

Everything of portal.settings, with HTTPS enforced and no default secret: SECRET_KEY,
FIELD_ENCRYPTION_KEY and ORDER_API_TOKEN must come from the environment."""

from django.core.exceptions import ImproperlyConfigured

from portal.settings import *  # noqa: F403
from portal.settings import env

DEBUG = False
PRODUCTION = True


def _required(name: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in the environment in production.")
    return value


SECRET_KEY = _required("SECRET_KEY")
ORDER_API_TOKEN = _required("ORDER_API_TOKEN")
FIELD_ENCRYPTION_KEY = env.list("FIELD_ENCRYPTION_KEY", default=[]) or [
    _required("FIELD_ENCRYPTION_KEY")
]

# The portal sits behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Static files: WhiteNoise serves what `collectstatic` gathered in STATIC_ROOT (when the
# image is built; on a machine, as the web service starts), under content-hashed names
# with far-future cache headers, gzip-compressed. Only here: the manifest storage refuses a
# `{% static %}` name collectstatic has not seen, which the development server and the
# test suite, which collect nothing, must not meet.
MIDDLEWARE = [*MIDDLEWARE]  # noqa: F405
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "whitenoise.middleware.WhiteNoiseMiddleware",
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
