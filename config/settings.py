"""Accord settings: one module, read from the environment.

With nothing set you get the embedded default (SQLite file in the project, Celery eager). Set
DATABASE_URL / CELERY_BROKER_URL for PostgreSQL / Redis. A bad value stops start-up with a message
naming the variable (environs raises EnvError / ImproperlyConfigured).
"""

from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from environs import Env, EnvError

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()


def _read(name, reader, **kwargs):
    """Read one variable, turning a parse failure into a message that names it."""
    try:
        return reader(name, **kwargs)
    except EnvError as exc:
        message = str(exc)
        if name not in message:
            message = f'Environment variable "{name}" invalid: {message}'
        raise ImproperlyConfigured(message) from exc


DEBUG = _read("DEBUG", env.bool, default=False)

_DEV_SECRET_KEY = "django-insecure-accord-development-only-key-do-not-use-in-production"
SECRET_KEY = _read("SECRET_KEY", env.str, default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Environment variable SECRET_KEY must be set when DEBUG is off "
            "(the development default is only used with DEBUG=true)."
        )
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = _read("ALLOWED_HOSTS", env.list, default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = _read("CSRF_TRUSTED_ORIGINS", env.list, default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",  # serves its own Swagger assets (no CDN)
    "template_partials",
    "import_export",
    "axes",
    "leads",
    "scoring",
    "handoff",
]

MIDDLEWARE = [
    "config.middleware.ServerTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a signed-in user unless its view is marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Database down (e.g. restarting): a clean 503, not a traceback.
    "config.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: it turns lockouts into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# --- Database ------------------------------------------------------------------------------
DATABASES = {
    "default": _read(
        "DATABASE_URL",
        env.dj_db_url,
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=60,
        # Re-check a kept connection before use, so a database restart heals by itself.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] not in (
    "django.db.backends.postgresql",
    "django.db.backends.sqlite3",
):
    raise ImproperlyConfigured(
        'Environment variable "DATABASE_URL" invalid: Accord runs on PostgreSQL (postgres://...) '
        "or SQLite (sqlite:///path)."
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The covering indexes' INCLUDE columns are a PostgreSQL speed-up; SQLite builds the same
    # indexes without them, so its warning about that is noise in `make run`'s output.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

# --- Auth ----------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # Login throttling: counts failures per username + IP and locks out for a cool-off period.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AXES_FAILURE_LIMIT = _read("AXES_FAILURE_LIMIT", env.int, default=5)
AXES_COOLOFF_TIME = timedelta(minutes=_read("AXES_COOLOFF_MINUTES", env.int, default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- I18N ----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = _read("TIME_ZONE", env.str, default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files (WhiteNoise serves them, also under gunicorn) ------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = _read("STATIC_ROOT", env.path, default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security (production values unless DEBUG) ----------------------------------------------
SECURE_SSL_REDIRECT = _read("SECURE_SSL_REDIRECT", env.bool, default=not DEBUG)
if _read("SECURE_PROXY_SSL_HEADER", env.bool, default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = 0 if DEBUG else _read("SECURE_HSTS_SECONDS", env.int, default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): scripts only from our own static files — no inline scripts
# anywhere (the board and reports keep their JS in static/). Inline styles stay allowed because the
# Django admin and htmx's indicator styles use them. The API's Swagger page (ninja) ships an inline
# script, so it is excluded.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/v1/docs"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Celery --------------------------------------------------------------------------------
CELERY_BROKER_URL = _read("CELERY_BROKER_URL", env.str, default="")
# No broker configured: run tasks inline (the embedded default needs no Redis).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged only after it ran, and redone if its worker dies mid-way.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# An unacknowledged task (its worker died) is redelivered after this many seconds.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 900}
CELERY_TIMEZONE = TIME_ZONE

# --- Logging -------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": _read("LOG_LEVEL", env.str, default="INFO")},
}

# --- CSV import (django-import-export) --------------------------------------------------------
# Importing needs the leads.import_lead permission (Marketers); a file is imported in one transaction.
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "import"
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False

# --- Accord --------------------------------------------------------------------------------
# Hours an SDR has to accept or reject a new MQL.
ACCORD_SLA_HOURS = _read("ACCORD_SLA_HOURS", env.int, default=24)
# How new MQLs are assigned to active SDRs: "round_robin" or "least_loaded".
ACCORD_ASSIGNMENT = _read("ACCORD_ASSIGNMENT", env.str, default="round_robin")
if ACCORD_ASSIGNMENT not in ("round_robin", "least_loaded"):
    raise ImproperlyConfigured('Environment variable "ACCORD_ASSIGNMENT" invalid: use round_robin or least_loaded.')
# The sweep rescores leads still flagged this many seconds after their interaction arrived
# (their task was lost, e.g. the broker was down).
ACCORD_SWEEP_SECONDS = _read("ACCORD_SWEEP_SECONDS", env.int, default=30)
# Fault injection for the reliability tests only: seconds a rescore sleeps while holding its leads,
# so a test can kill the worker mid-rescore. Always 0 in real use.
ACCORD_RESCORE_DELAY_SECONDS = _read("ACCORD_RESCORE_DELAY_SECONDS", env.float, default=0.0)
# How often engagement decay is applied to every lead with time-dependent rules.
ACCORD_DECAY_MINUTES = _read("ACCORD_DECAY_MINUTES", env.int, default=60)
# Threads (each with its own database connection) that a bulk rescore run uses on PostgreSQL.
ACCORD_RESCORE_THREADS = _read("ACCORD_RESCORE_THREADS", env.int, default=2)
if ACCORD_RESCORE_THREADS < 1:
    raise ImproperlyConfigured('Environment variable "ACCORD_RESCORE_THREADS" invalid: use 1 or more.')

# Fail fast when the broker is down: the request still succeeds and the sweep catches up.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULE = {
    "rescore-sweep": {"task": "scoring.tasks.rescore_sweep", "schedule": float(ACCORD_SWEEP_SECONDS)},
    "rescore-decay": {"task": "scoring.tasks.rescore_decay", "schedule": 60.0 * ACCORD_DECAY_MINUTES},
}
