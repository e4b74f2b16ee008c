"""Settings, all from the environment (12-factor); every variable has a working default.

The defaults run the embedded set-up: SQLite, a broker on the filesystem, a local mail sink.
README.md documents each variable.
"""

from pathlib import Path

import environ

from provisioning.states import stuck_after_defaults

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
# The default key only suits the embedded set-up; production settings refuse it.
SECRET_KEY = env.str("SECRET_KEY", default="insecure-embedded-default-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "provisioning",
    "zones",
    "certificates",
    "notifications",
    "outbox",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.AccountLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The worker and the web process share the file: wait for the writer instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-portal.sqlite3")}
# Keep database sessions between requests and tasks (checked before reuse): opening one
# costs more than most of the portal's pages.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "portal" / "static"]

CSRF_FAILURE_VIEW = "portal.views.csrf_failure"

# Shared by every web process for rate limits: use Redis in production
# (CACHE_URL=redis://host:6379/1); the embedded default keeps counts in the process.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
RATELIMIT_ENABLED = env.bool("RATELIMIT_ENABLED", default=True)
# scope: (requests, seconds), counted per client address and per target.
RATELIMITS = {
    "login": (10, 300),
    "dcv": (10, 600),
    "api": (1200, 60),
}

# Email: every message is an outbox row sent by a task (notifications app).
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=1025)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=15)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Private Exchange <noreply@localhost>")
EMAIL_MAX_ATTEMPTS = env.int("EMAIL_MAX_ATTEMPTS", default=8)

# Celery. The embedded default is kombu's filesystem transport: no server to run.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_FOLDER = VAR_DIR / "broker"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# Outbox sweeps: how often beat looks for owed work, and how long a claimed job may run
# before another worker may take it over (a killed worker leaves its claim behind).
OUTBOX_SWEEP_INTERVAL = env.float("OUTBOX_SWEEP_INTERVAL", default=5.0)
# A dispatched row whose task has not started after this long is sent again (lost message).
OUTBOX_REDISPATCH_AFTER = env.int("OUTBOX_REDISPATCH_AFTER", default=60)
JOB_LEASE_SECONDS = env.int("JOB_LEASE_SECONDS", default=300)
JOB_MAX_ATTEMPTS = env.int("JOB_MAX_ATTEMPTS", default=6)
RETRY_BACKOFF_BASE = env.float("RETRY_BACKOFF_BASE", default=30.0)
RETRY_BACKOFF_MAX = env.float("RETRY_BACKOFF_MAX", default=3600.0)

# The product.
ORDER_API_TOKEN = env.str("ORDER_API_TOKEN", default="")
PLATFORM_IPV4_POOL = env.list(
    "PLATFORM_IPV4_POOL", default=["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
)
PLATFORM_IPV6_POOL = env.list("PLATFORM_IPV6_POOL", default=["2001:db8:100::/64"])
SETUP_LINK_MAX_AGE = env.int("SETUP_LINK_MAX_AGE", default=30 * 24 * 3600)
SERVER_SUBDOMAINS = env.list("SERVER_SUBDOMAINS", default=["exchange", "mail", "webmail"])
FINALISATION_DELAY = env.int("FINALISATION_DELAY", default=14400)
# How long a platform may stay in a state before admin flags it "stuck", in seconds:
# "state=seconds,..." overrides the defaults, which provisioning.states.PLATFORM gives.
PLATFORM_STUCK_AFTER = {
    **stuck_after_defaults(finalisation_delay=FINALISATION_DELAY),
    **{
        state: int(seconds)
        for state, seconds in env.dict("PLATFORM_STUCK_AFTER", default={}).items()
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # aiosmtpd (the embedded mail sink) logs every SMTP command at INFO.
    "loggers": {"mail.log": {"level": "WARNING"}},
}

# DNS (zones app). Without DNS_UPDATE_SERVER the portal keeps the zones' records itself.
DNS_UPDATE_SERVER = env.str("DNS_UPDATE_SERVER", default="")  # host:port of the primary
DNS_TSIG_KEY_NAME = env.str("DNS_TSIG_KEY_NAME", default="")
DNS_TSIG_ALGORITHM = env.str("DNS_TSIG_ALGORITHM", default="hmac-sha256")
DNS_TSIG_SECRET = env.str("DNS_TSIG_SECRET", default="")  # base64
DNS_RECORD_TTL = env.int("DNS_RECORD_TTL", default=3600)
DNS_CHECK_RESOLVERS = env.list("DNS_CHECK_RESOLVERS", default=[])  # host:port, system if empty
DNS_TIMEOUT = env.float("DNS_TIMEOUT", default=5.0)
# Checks of records not yet verified: first after DNS_CHECK_INTERVAL, then twice as far
# apart each time up to DNS_CHECK_MAX_INTERVAL; given up DNS_CHECK_STOP_AFTER after ready.
DNS_CHECK_INTERVAL = env.int("DNS_CHECK_INTERVAL", default=60)
DNS_CHECK_MAX_INTERVAL = env.int("DNS_CHECK_MAX_INTERVAL", default=3600)
DNS_CHECK_STOP_AFTER = env.int("DNS_CHECK_STOP_AFTER", default=7 * 24 * 3600)

# Certificates (certificates app).
CA_BACKEND = env.str("CA_BACKEND", default="internal")  # internal | acme
CERT_KEY_TYPE = env.str("CERT_KEY_TYPE", default="rsa2048")  # rsa2048 | ec-p256
# Fernet keys (urlsafe base64, 32 bytes), newest first; older ones still decrypt (rotation).
# The embedded default derives one from SECRET_KEY.
FIELD_ENCRYPTION_KEY = env.list("FIELD_ENCRYPTION_KEY", default=[])
DCV_CODE_TTL = env.int("DCV_CODE_TTL", default=30 * 24 * 3600)
DCV_MAX_ATTEMPTS = env.int("DCV_MAX_ATTEMPTS", default=5)
DCV_FROM_EMAIL = env.str("DCV_FROM_EMAIL", default="Certificate Authority <dcv@localhost>")
ACME_DIRECTORY_URL = env.str("ACME_DIRECTORY_URL", default="")
ACME_CA_BUNDLE = env.str("ACME_CA_BUNDLE", default="")  # PEM file to trust the ACME server
ACME_CONTACT_EMAIL = env.str("ACME_CONTACT_EMAIL", default="")
