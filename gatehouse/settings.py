"""Gatehouse settings. Every value comes from the environment (see README).

Two modes: the embedded default (`GATEHOUSE_ENV=development`: SQLite, in-process
cache, a filesystem Celery broker, the simulator on) and `production`, where
unsafe or missing settings stop the process at start with a clear message.
"""

from __future__ import annotations

import os
from ipaddress import ip_network
from pathlib import Path

from cryptography.fernet import Fernet
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from gatehouse.env import (
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secrets,
    env_str,
    new_secret_key,
    persistent_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# pytest announces itself in PYTEST_VERSION; test runs then keep their data apart.
GATEHOUSE_ENV = env_str("GATEHOUSE_ENV", "test" if env_str("PYTEST_VERSION") else "development").lower()
if GATEHOUSE_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured("GATEHOUSE_ENV must be development, production or test.")
DATA_DIR = Path(env_str("GATEHOUSE_DATA_DIR", str(BASE_DIR / "var" / ("test" if GATEHOUSE_ENV == "test" else ""))))
PRODUCTION = GATEHOUSE_ENV == "production"
# Made on every path (key files, SQLite, the Celery broker and beat files live here), not only
# with the filesystem broker; a folder that cannot be made is named instead of a later
# "unable to open database file".
try:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
except OSError as _exc:
    raise ImproperlyConfigured(
        f"Gatehouse cannot start: the data directory {DATA_DIR} cannot be created ({_exc.strerror}); "
        "set GATEHOUSE_DATA_DIR to a folder it may write."
    ) from _exc

DEBUG = env_bool("GATEHOUSE_DEBUG", not PRODUCTION)

_problems: list[str] = []

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        _problems.append("SECRET_KEY is not set.")
    else:
        SECRET_KEY = persistent_secret(DATA_DIR / "secret_key", new_secret_key)
elif PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure")):
    # Django's own deployment check (security.W009): 50+ characters, 5+ distinct, not the generated placeholder.
    _problems.append("SECRET_KEY is too short or insecure (use 50 random characters).")

# Fernet keys for provider secrets; the first encrypts, all decrypt (rotation).
ENCRYPTION_KEYS = env_list("GATEHOUSE_ENCRYPTION_KEYS", [])
if not ENCRYPTION_KEYS:
    if PRODUCTION:
        _problems.append("GATEHOUSE_ENCRYPTION_KEYS is not set (comma-separated Fernet keys, newest first).")
    else:
        ENCRYPTION_KEYS = [persistent_secret(DATA_DIR / "encryption_key", lambda: Fernet.generate_key().decode())]
for _key in ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        _problems.append("GATEHOUSE_ENCRYPTION_KEYS holds a value that is not a Fernet key.")

ALLOWED_HOSTS = env_list("GATEHOUSE_ALLOWED_HOSTS", [] if PRODUCTION else ["*"])
if PRODUCTION and (not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS):
    _problems.append("GATEHOUSE_ALLOWED_HOSTS must list the host names the gateway answers to.")
if PRODUCTION:
    for _host in ALLOWED_HOSTS:
        if _host.startswith(".") and "." not in _host[1:].strip("."):
            _problems.append(f"GATEHOUSE_ALLOWED_HOSTS: {_host!r} matches every host of a top-level domain.")
CSRF_TRUSTED_ORIGINS = env_list("GATEHOUSE_CSRF_TRUSTED_ORIGINS", [])
if PRODUCTION and DEBUG:
    _problems.append("GATEHOUSE_DEBUG must be false in production.")

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'gatehouse.sqlite3'}")
DATABASES = {"default": database_from_url(DATABASE_URL, base_dir=BASE_DIR)}
if PRODUCTION and DATABASES["default"]["ENGINE"].endswith("sqlite3") and not env_bool("GATEHOUSE_ALLOW_SQLITE", False):
    _problems.append("DATABASE_URL points at SQLite; production needs PostgreSQL (or set GATEHOUSE_ALLOW_SQLITE=true).")

REDIS_URL = env_str("REDIS_URL")

# Provider API keys that live in the environment (a provider's `secret_env` names one,
# e.g. OPENAI_API_KEY). Read here once, like every other variable; the name keeps
# the values out of Django's debug pages.
GATEHOUSE_ENV_SECRETS = env_secrets()


def _sqlite_prepare(database: dict) -> list[str]:
    """Create the SQLite file readable by its owner only (0600), like the key files next to it."""
    problems: list[str] = []
    name = str(database.get("NAME", ""))
    if not database["ENGINE"].endswith("sqlite3") or not name or name == ":memory:" or name.startswith("file:"):
        return problems
    path = Path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # SQLite takes an empty file
        elif path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except FileExistsError:
        pass  # another process created it first, with the same mode
    except OSError as exc:
        problems.append(f"The SQLite database {path} cannot be created ({exc.strerror}); check its folder.")
    return problems


if PRODUCTION and env_bool("GATEHOUSE_SIMULATOR", False):
    _problems.append("GATEHOUSE_SIMULATOR cannot be on in production (its fault injection would reach real traffic).")

if not _problems:  # nothing is created for a configuration that cannot start anyway
    _problems += _sqlite_prepare(DATABASES["default"])

if _problems:
    _where = "in production" if PRODUCTION else "here"
    raise ImproperlyConfigured(f"Gatehouse cannot start {_where}:\n  - " + "\n  - ".join(_problems))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "csp",
    "console",
    "providers",
    "routing",
    "budgets",
    "audit",
    "guardrails",
    "workspace",
    "evals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "console.middleware.OrganizationMiddleware",
]

ROOT_URLCONF = "gatehouse.urls"

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
                "console.context_processors.console",
            ],
        },
    },
]

ASGI_APPLICATION = "gatehouse.asgi.application"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "console:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("GATEHOUSE_STATIC_ROOT", str(DATA_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "gatehouse",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HSTS in production: HTTPS only, for a year (SecurityMiddleware sends it on answers to HTTPS
# requests; behind a TLS-terminating proxy set GATEHOUSE_PROXY_SSL_HEADER so that they are seen).
SECURE_HSTS_SECONDS = env_int("GATEHOUSE_HSTS_SECONDS", 31_536_000) if PRODUCTION else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("GATEHOUSE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("GATEHOUSE_HSTS_PRELOAD", False)
# Behind a TLS-terminating proxy: the header (e.g. X-Forwarded-Proto) that says a request came in
# over HTTPS. Set it only when the proxy always sets or strips that header.
_proxy_ssl_header = env_str("GATEHOUSE_PROXY_SSL_HEADER")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

# Content-Security-Policy of every page (django-csp). htmx, plotly and the console's scripts are
# served from our own origin, so no inline script runs: figures travel as JSON (gatehouse/charts.py).
# A template that really needs an inline script gives it `nonce="{{ request.csp_nonce }}"`.
# Inline styles stay allowed: plotly and htmx set them at run time.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Celery: Redis in production; a filesystem broker on the embedded default so that
# background jobs run in their own worker without any server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL or "")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = DATA_DIR / "celery"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "data_folder_processed": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "polling_interval": 0.1,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_IGNORE_RESULT = not CELERY_RESULT_BACKEND
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "usage-rollup": {"task": "budgets.tasks.usage_rollup", "schedule": 60.0},
    "budget-maintenance": {"task": "budgets.tasks.budget_maintenance", "schedule": 60.0},
    "change-feed-prune": {"task": "console.tasks.change_feed_prune", "schedule": 3600.0},
    "ledger-seal": {"task": "audit.tasks.ledger_seal", "schedule": env_float("GATEHOUSE_LEDGER_SEAL_INTERVAL", 2.0)},
    "ledger-cosign": {"task": "audit.tasks.ledger_cosign", "schedule": 30.0},
    "ledger-verify": {
        "task": "audit.tasks.ledger_verify",
        "schedule": env_float("GATEHOUSE_LEDGER_VERIFY_INTERVAL", 300.0),
    },
    "spend-anomalies": {"task": "budgets.tasks.spend_anomalies", "schedule": 3600.0},
    "finops-digest": {"task": "budgets.tasks.finops_digest", "schedule": 7 * 24 * 3600.0},
    "eval-schedule": {"task": "evals.tasks.eval_schedule", "schedule": 300.0},
    # Model governance (docs/model-governance.md): version drift from the usage records,
    # lifecycle alerts and dates that have come.
    "version-drift": {"task": "evals.tasks.version_drift_check", "schedule": 60.0},
    "model-lifecycle": {"task": "evals.tasks.model_lifecycle", "schedule": 3600.0},
    "workspace-retention": {"task": "workspace.conversations_expire", "schedule": 3600.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "console.api.authentication.AdminTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["console.api.permissions.IsOrganizationMember"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "DEFAULT_PARSER_CLASSES": ["console.api.parsers.StrictJSONParser"],  # the schema publishes JSON bodies only
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "console.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Gatehouse management API",
    "DESCRIPTION": "Organizations, teams, users, keys, models, providers, deployments and usage.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "console.api.schema.error_responses",
    ],
    # In production the schema and its docs are for signed-in users and token holders only.
    "SERVE_PERMISSIONS": ["console.api.permissions.ApiDocsAccess"],
}

# The data plane.
GATEHOUSE = {
    # Model governance (docs/model-governance.md): alerts this many days before a model's
    # deprecation or retirement date; the gateway's health probe of each deployment.
    "LIFECYCLE_ALERT_DAYS": env_int("GATEHOUSE_LIFECYCLE_ALERT_DAYS", 30),
    "HEALTH_PROBE": {
        "enabled": env_bool("GATEHOUSE_HEALTH_PROBE", True),
        "interval": env_float("GATEHOUSE_HEALTH_PROBE_INTERVAL", 60.0),
        "timeout": env_float("GATEHOUSE_HEALTH_PROBE_TIMEOUT", 10.0),
    },
    "MAX_BODY_BYTES": env_int("GATEHOUSE_MAX_BODY_BYTES", 4 * 1024 * 1024),
    "USAGE_FLUSH_INTERVAL": env_float("GATEHOUSE_USAGE_FLUSH_INTERVAL", 0.1),
    "USAGE_BUFFER_MAX": env_int("GATEHOUSE_USAGE_BUFFER_MAX", 50_000),
    # Write-ahead journal of usage records, one file per gateway process (docs/usage-durability.md).
    "JOURNAL_DIR": Path(env_str("GATEHOUSE_JOURNAL_DIR", str(DATA_DIR / "journal"))),
    "CHANGE_POLL_INTERVAL": env_float("GATEHOUSE_CHANGE_POLL_INTERVAL", 0.25),
    # The change feed (docs/change-feed.md): how long a missing id may still commit,
    # how many rows one poll reads, how many missing ids are tracked, how long rows are kept.
    "CHANGE_FEED_GAP_HORIZON": env_float("GATEHOUSE_CHANGE_FEED_GAP_HORIZON", 300.0),
    "CHANGE_FEED_BATCH": env_int("GATEHOUSE_CHANGE_FEED_BATCH", 1000),
    "CHANGE_FEED_MAX_GAPS": env_int("GATEHOUSE_CHANGE_FEED_MAX_GAPS", 10_000),
    "CHANGE_FEED_RETENTION": env_float("GATEHOUSE_CHANGE_FEED_RETENTION", 86_400.0),
    "CHANGE_FEED_PRUNE_BATCH": env_int("GATEHOUSE_CHANGE_FEED_PRUNE_BATCH", 5000),
    "CHANGE_FEED_CHANNEL": env_str("GATEHOUSE_CHANGE_FEED_CHANNEL", "gatehouse:changes"),
    # Virtual-key lookups and failed-auth floods.
    "KEY_LOOKUP_CONCURRENCY": env_int("GATEHOUSE_KEY_LOOKUP_CONCURRENCY", 8),
    "KEY_LOOKUP_QUEUE": env_int("GATEHOUSE_KEY_LOOKUP_QUEUE", 1000),
    "KEY_NEGATIVE_TTL": env_float("GATEHOUSE_KEY_NEGATIVE_TTL", 30.0),
    "KEY_CACHE_MAX_ENTRIES": env_int("GATEHOUSE_KEY_CACHE_MAX_ENTRIES", 100_000),
    "AUTH_FAILURE_LIMIT": env_int("GATEHOUSE_AUTH_FAILURE_LIMIT", 30),
    "AUTH_FAILURE_WINDOW": env_float("GATEHOUSE_AUTH_FAILURE_WINDOW", 60.0),
    # Proxies (addresses or CIDR networks) whose X-Forwarded-For names the real client.
    "TRUSTED_PROXIES": tuple(env_list("GATEHOUSE_TRUSTED_PROXIES", [])),
    "UPSTREAM_MAX_CONNECTIONS": env_int("GATEHOUSE_UPSTREAM_MAX_CONNECTIONS", 512),
    "DEFAULT_TIMEOUT": env_float("GATEHOUSE_DEFAULT_TIMEOUT", 120.0),
    "MAX_ATTEMPTS": env_int("GATEHOUSE_MAX_ATTEMPTS", 3),
    # Threads per gateway process for its blocking database reads (key lookups,
    # snapshot rebuilds, change-feed polls); usage writes have a thread of their own.
    "DB_THREADS": env_int("GATEHOUSE_DB_THREADS", 4),
    # Routing reliability (docs/routing-reliability.md).
    "RETRY_BACKOFF": env_float("GATEHOUSE_RETRY_BACKOFF", 0.05),
    "RETRY_BACKOFF_MAX": env_float("GATEHOUSE_RETRY_BACKOFF_MAX", 2.0),
    "ROUTING_STATE_PREFIX": env_str("GATEHOUSE_ROUTING_STATE_PREFIX", "gatehouse:routing"),
    "ROUTING_STATE_CACHE_TTL": env_float("GATEHOUSE_ROUTING_STATE_CACHE_TTL", 0.05),
    "REQUEST_DEADLINE": env_float("GATEHOUSE_REQUEST_DEADLINE", 300.0),
    "MAX_ATTEMPTS_TOTAL": env_int("GATEHOUSE_MAX_ATTEMPTS_TOTAL", 6),
    "TTFT_TIMEOUT": env_float("GATEHOUSE_TTFT_TIMEOUT", 60.0),
    "STREAM_IDLE_TIMEOUT": env_float("GATEHOUSE_STREAM_IDLE_TIMEOUT", 60.0),
    "EJECTION_ERROR_RATE": env_float("GATEHOUSE_EJECTION_ERROR_RATE", 0.5),
    "EJECTION_MIN_REQUESTS": env_int("GATEHOUSE_EJECTION_MIN_REQUESTS", 5),
    "EJECTION_MAX_PERCENT": env_int("GATEHOUSE_EJECTION_MAX_PERCENT", 50),
    "EJECTION_MAX_SECONDS": env_float("GATEHOUSE_EJECTION_MAX_SECONDS", 300.0),
    # The stock adrf dispatch runs authentication in a thread; kept switchable so
    # `make bench` can show what the async dispatch saves.
    "STOCK_DRF_DISPATCH": env_bool("GATEHOUSE_STOCK_DRF_DISPATCH", False),
    "SIMULATOR": env_bool("GATEHOUSE_SIMULATOR", not PRODUCTION),
    "SIMULATOR_URL": env_str("GATEHOUSE_SIMULATOR_URL", "http://127.0.0.1:8000/sim"),
    # The admin token of the simulator's fault-injection endpoint `/sim/_control`. Unset, one is
    # generated once and kept in the data directory (every worker and the tooling read the same).
    "SIMULATOR_CONTROL_TOKEN": env_str("GATEHOUSE_SIMULATOR_CONTROL_TOKEN")
    or ("" if PRODUCTION else persistent_secret(DATA_DIR / "simulator_control_token", new_secret_key)),
    # The simulator's defaults for every answer (see providers/simulator/knobs.py).
    "SIMULATOR_DEFAULTS": {
        "latency_scale": env_str("GATEHOUSE_SIM_LATENCY_SCALE", "1.0"),
        "fault": env_str("GATEHOUSE_SIM_FAULT", ""),
        "fault_rate": env_str("GATEHOUSE_SIM_FAULT_RATE", "1.0"),
        "invalid_json_rate": env_str("GATEHOUSE_SIM_INVALID_JSON_RATE", "0"),
    },
    "DEMO_PASSWORD": env_str("GATEHOUSE_DEMO_PASSWORD", ""),
    # /api/schema/ and /api/docs/ without signing in: development only.
    "API_DOCS_PUBLIC": not PRODUCTION,
}

for _proxy in GATEHOUSE["TRUSTED_PROXIES"]:
    try:
        ip_network(_proxy, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"GATEHOUSE_TRUSTED_PROXIES: {_proxy!r} is not an address or network.") from _exc

# Budgets and rate limits (docs/budgets-runtime.md). Keys are read by budgets/conf.py.
GATEHOUSE_BUDGETS = {
    "HOLD_TTL": env_float("GATEHOUSE_BUDGET_HOLD_TTL", 900.0),
    "TICK": env_float("GATEHOUSE_BUDGET_TICK", 0.25),
    "REAP_INTERVAL": env_float("GATEHOUSE_BUDGET_REAP_INTERVAL", 5.0),
    "REDIS_URL": REDIS_URL,
    "REDIS_PREFIX": env_str("GATEHOUSE_REDIS_PREFIX", f"gh-test:{os.getpid()}:" if GATEHOUSE_ENV == "test" else "gh:"),
    "WEBHOOK_TIMEOUT": env_float("GATEHOUSE_ALERT_WEBHOOK_TIMEOUT", 5.0),
    "GROUP_COMMIT_MAX": env_int("GATEHOUSE_BUDGET_GROUP_COMMIT_MAX", 1),
    "RESTORE_WAIT": env_float("GATEHOUSE_BUDGET_RESTORE_WAIT", 2.0),
    "LEASE_MULTIPLE": env_int("GATEHOUSE_BUDGET_LEASE_MULTIPLE", 32),
    "LEASE_HEADROOM": env_int("GATEHOUSE_BUDGET_LEASE_HEADROOM", 16),
    "LEASE_AGE": env_float("GATEHOUSE_BUDGET_LEASE_AGE", 1.0),
}

# The transparency ledger (audit app); see docs/ledger.md.
GATEHOUSE_LEDGER = {
    # Signed-note key name and the prefix of each log's origin line (schema-less URLs).
    "NAME": env_str("GATEHOUSE_LEDGER_NAME", "gatehouse.local/ledger"),
    # Seal at most this often (seconds) and at least every MAX_CHECKPOINT_AGE while leaves wait.
    "SEAL_INTERVAL": env_float("GATEHOUSE_LEDGER_SEAL_INTERVAL", 2.0),
    "MAX_CHECKPOINT_AGE": env_float("GATEHOUSE_LEDGER_MAX_CHECKPOINT_AGE", 60.0),
    "SEAL_BATCH": env_int("GATEHOUSE_LEDGER_SEAL_BATCH", 50_000),
    # The second anchor: every checkpoint appended to this file and/or POSTed to this URL.
    "ANCHOR_FILE": env_str("GATEHOUSE_LEDGER_ANCHOR_FILE", ""),
    "ANCHOR_URL": env_str("GATEHOUSE_LEDGER_ANCHOR_URL", ""),
    "WITNESS_TIMEOUT": env_float("GATEHOUSE_LEDGER_WITNESS_TIMEOUT", 10.0),
    "VERIFY_INTERVAL": env_float("GATEHOUSE_LEDGER_VERIFY_INTERVAL", 300.0),
}

# FinOps: /metrics access, Prometheus multi-process files, OpenTelemetry exporters (the
# standard OTEL_* names), spend anomaly thresholds. See docs/finops.md.
GATEHOUSE_FINOPS = {
    "METRICS_TOKEN": env_str("GATEHOUSE_METRICS_TOKEN", ""),
    "METRICS_NETWORKS": env_list("GATEHOUSE_METRICS_NETWORKS", ["127.0.0.1/32", "::1/128"]),
    "PROMETHEUS_MULTIPROC_DIR": env_str("PROMETHEUS_MULTIPROC_DIR", ""),
    "OTEL_TRACES_EXPORTER": env_str("OTEL_TRACES_EXPORTER", ""),
    "OTEL_METRICS_EXPORTER": env_str("OTEL_METRICS_EXPORTER", ""),
    "OTEL_EXPORTER_OTLP_ENDPOINT": env_str("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": env_str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": env_str("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", ""),
    "OTEL_EXPORTER_OTLP_HEADERS": env_str("OTEL_EXPORTER_OTLP_HEADERS", ""),
    "OTEL_EXPORTER_OTLP_TIMEOUT": env_int("OTEL_EXPORTER_OTLP_TIMEOUT", 10000),
    "OTEL_METRIC_EXPORT_INTERVAL": env_int("OTEL_METRIC_EXPORT_INTERVAL", 60000),
    "OTEL_SDK_DISABLED": env_bool("OTEL_SDK_DISABLED", False),
    "OTEL_RESOURCE_ATTRIBUTES": env_str("OTEL_RESOURCE_ATTRIBUTES", ""),
    "OTEL_SERVICE_NAME": env_str("OTEL_SERVICE_NAME", "gatehouse"),
    "ANOMALY_FACTOR": env_float("GATEHOUSE_ANOMALY_FACTOR", 3.0),
    "ANOMALY_MIN_USD": env_float("GATEHOUSE_ANOMALY_MIN_USD", 1.0),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("GATEHOUSE_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "httpx": {"level": "WARNING"},
    },
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("GATEHOUSE_FROM_EMAIL", "gatehouse@localhost")

# Sign-in (docs/sso.md): lockout, TOTP and OIDC single sign-on, in their own settings module.
from gatehouse.settings_signin import *  # noqa: E402,F403

INSTALLED_APPS += SIGNIN_APPS  # noqa: F405
MIDDLEWARE += SIGNIN_MIDDLEWARE  # noqa: F405 - last, as django-axes asks
LOGGING["loggers"]["axes"] = {"level": "WARNING"}
