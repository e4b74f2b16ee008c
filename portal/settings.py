"""Settings, all from the environment (12-factor); every variable has a working default.

The defaults run the embedded set-up: SQLite, a broker on the filesystem, a local mail sink.
README.md documents each variable.
"""

from datetime import timedelta
from pathlib import Path

import environ

from provisioning.states import stuck_after_defaults

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
# portal.production sets it: system checks then refuse weak secrets and per-process counts.
PRODUCTION = False
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
    "axes",
    "provisioning",
    "zones",
    "certificates",
    "notifications",
    "outbox",
    "webhooks",
    "portal",
    # django-ninja: the API, and the docs page's Swagger UI served from its static files.
    "ninja",
    "operations",
    "django_prometheus",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Early, so that every response gets the policy, those of inner middleware included.
    "csp.middleware.CSPMiddleware",
    # Django's, with a "try again" page when a session cannot be changed (portal.sessions).
    "portal.sessions.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.AccountLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
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
                "portal.context_processors.support",
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
# The same backends, timing every query for /metrics (django-prometheus).
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "django_prometheus.db.backends.", 1
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "portal.auth.LoginAttemptsBackend",
    "portal.auth.CaseInsensitiveModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
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

CSRF_FAILURE_VIEW = "portal.views.csrf_failure"

# Content-Security-Policy (django-csp) on every page, admin included: scripts and styles
# only from our own static files (no inline script, no nonce needed), nothing may frame the
# pages, forms post only to the portal. Django's admin needs nothing more.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# Shared by every web process for rate limits: use Redis in production
# (CACHE_URL=redis://host:6379/1); the embedded default keeps counts in the process.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A cache that does not answer within a second counts as down (sessions then fall back
    # to the database) rather than holding the request.
    # (CACHE_URL's query may set others: redis://host:6379/1?socket_timeout=5)
    for _option in ("socket_connect_timeout", "socket_timeout"):
        CACHES["default"].setdefault("OPTIONS", {}).setdefault(_option, 1.0)
# Sessions: the database, with a copy in the cache when every web process shares it
# (portal.sessions); a copy in one process's memory would outlive a logout served by another.
SESSION_ENGINE = (
    "django.contrib.sessions.backends.db"
    if CACHES["default"]["BACKEND"].endswith(("LocMemCache", "DummyCache"))
    else "portal.sessions"
)
RATELIMIT_ENABLED = env.bool("RATELIMIT_ENABLED", default=True)
# scope: (requests, seconds), counted per client address and per target.
RATELIMITS = {
    "login": (10, 300),
    "dcv": (10, 600),
    "api": (1200, 60),
    # Validation emails a customer asks for: per platform, and per account over a day.
    "dcv_resend": (3, 3600),
    "dcv_resend_account": (10, 86400),
}
# Proxies whose X-Forwarded-For is believed (addresses or CIDRs): the hoster's TLS proxy.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# Failed logins (both logins) are counted by django-axes in the database, shared by every
# web process, per (user name, client address): a guesser elsewhere cannot lock the owner
# out. The "login" limit above bounds one address trying many names.
AXES_ENABLED = RATELIMIT_ENABLED
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("LOGIN_LOCKOUT_SECONDS", default=900))
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "portal.ratelimit.client_address"
AXES_USERNAME_CALLABLE = "portal.auth.axes_username"
AXES_LOCKOUT_CALLABLE = "portal.ratelimit.login_locked_out"
# The query and form of a failed login are stored: `next` may hold an emailed link's token.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "next"]

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
# The billing system's webhooks (webhooks app): where events are POSTed, the HMAC key that
# signs them, seconds per attempt and attempts before a delivery is marked failed.
ORDER_WEBHOOK_URL = env.str("ORDER_WEBHOOK_URL", default="")
ORDER_WEBHOOK_SECRET = env.str("ORDER_WEBHOOK_SECRET", default="")
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=15)
# How long an Idempotency-Key of POST /api/orders/ is remembered (at least 24 hours).
IDEMPOTENCY_KEY_TTL = max(env.int("IDEMPOTENCY_KEY_TTL", default=48 * 3600), 24 * 3600)
# Seconds a terminated platform's addresses stay out of the pools (default 30 days).
ADDRESS_QUARANTINE = env.int("ADDRESS_QUARANTINE", default=30 * 24 * 3600)
PLATFORM_IPV4_POOL = env.list(
    "PLATFORM_IPV4_POOL", default=["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
)
PLATFORM_IPV6_POOL = env.list("PLATFORM_IPV6_POOL", default=["2001:db8:100::/64"])
SETUP_LINK_MAX_AGE = env.int("SETUP_LINK_MAX_AGE", default=30 * 24 * 3600)
# The hoster's support, in the footer of every customer page and on the error pages (when set).
SUPPORT_URL = env.str("SUPPORT_URL", default="")
SUPPORT_EMAIL = env.str("SUPPORT_EMAIL", default="")
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

# Operations (operations app): /metrics, /healthz, /readyz, the worker's metrics, logs.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
METRICS_CACHE_SECONDS = env.float("METRICS_CACHE_SECONDS", default=5.0)
WORKER_METRICS_LISTEN = env.str("WORKER_METRICS_LISTEN", default="")  # host:port; empty: none
PROMETHEUS_EXPORT_MIGRATIONS = False  # /readyz says whether migrations are applied
# The platform probes and the metrics endpoint answer plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
LOG_FORMAT = env.str("LOG_FORMAT", default="text")  # text | json
# Beat's sweeps every few seconds log nothing unless this is set (their failures always do).
LOG_PERIODIC_TASKS = env.bool("LOG_PERIODIC_TASKS", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "platform": {"()": "operations.logs.PlatformContextFilter"},
        "quiet_periodic_tasks": {"()": "operations.logs.QuietPeriodicTasksFilter"},
    },
    "formatters": {
        "text": {"()": "operations.logs.TextFormatter"},
        "json": {"()": "operations.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["platform", "quiet_periodic_tasks"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # aiosmtpd (the embedded mail sink) logs every SMTP command at INFO.
    "loggers": {"mail.log": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
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
# The customers' mail domains. MAIL_EXCHANGERS: "host:priority,..." (a filtering layer of the
# hoster's); empty: each platform's own server name at priority 10. DOMAIN_CHECK_TARGET: the
# hoster's host name that a domain outside the account's zones points a CNAME to, to prove it
# is the customer's.
MAIL_EXCHANGERS = env.str("MAIL_EXCHANGERS", default="")
DOMAIN_CHECK_TARGET = env.str("DOMAIN_CHECK_TARGET", default="domain-check.invalid")
PLATFORM_MAX_DOMAINS = env.int("PLATFORM_MAX_DOMAINS", default=100)

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
# External Account Binding (RFC 8555 §7.3.4), for commercial ACME CAs that require it:
# the key identifier and the MAC key (base64url) the CA gives with the account.
ACME_EAB_KID = env.str("ACME_EAB_KID", default="")
ACME_EAB_HMAC_KEY = env.str("ACME_EAB_HMAC_KEY", default="")
# Seconds; empty means the CA/B Forum maximum in force less a day (certificates.policy).
# A longer value than the maximum is capped to it.
CERTIFICATE_LIFETIME = (
    env.int("CERTIFICATE_LIFETIME") if env.str("CERTIFICATE_LIFETIME", default="") else None
)
# Renew when this percentage of the certificate's lifetime is left (cert-manager: a third).
CERTIFICATE_RENEW_BEFORE_PERCENT = env.int("CERTIFICATE_RENEW_BEFORE_PERCENT", default=33)
# Seconds a validation of the name is reused for a renewal; empty means the BR maximum in force.
DCV_REUSE_PERIOD = env.int("DCV_REUSE_PERIOD") if env.str("DCV_REUSE_PERIOD", default="") else None
# While a renewal waits for the customer, a reminder goes to the account's reference address
# this many seconds before the current certificate ends (each once): 30, 14, 7, 3 and 1 days.
RENEWAL_REMINDER_SECONDS = sorted(
    env.list(
        "RENEWAL_REMINDER_SECONDS", cast=int, default=[2592000, 1209600, 604800, 259200, 86400]
    ),
    reverse=True,
)
