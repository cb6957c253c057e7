"""Gatehouse settings. Every value comes from the environment (see README).

Two modes: the embedded default (`GATEHOUSE_ENV=development`: SQLite, in-process
cache, a filesystem Celery broker, the simulator on) and `production`, where
unsafe or missing settings stop the process at start with a clear message.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from gatehouse.env import (
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
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

DEBUG = env_bool("GATEHOUSE_DEBUG", not PRODUCTION)

_problems: list[str] = []

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        _problems.append("SECRET_KEY is not set.")
    else:
        SECRET_KEY = persistent_secret(DATA_DIR / "secret_key", new_secret_key)
elif PRODUCTION and (len(SECRET_KEY) < 40 or SECRET_KEY.startswith("django-insecure")):
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
CSRF_TRUSTED_ORIGINS = env_list("GATEHOUSE_CSRF_TRUSTED_ORIGINS", [])
if PRODUCTION and DEBUG:
    _problems.append("GATEHOUSE_DEBUG must be false in production.")

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'gatehouse.sqlite3'}")
DATABASES = {"default": database_from_url(DATABASE_URL, base_dir=BASE_DIR)}
if PRODUCTION and DATABASES["default"]["ENGINE"].endswith("sqlite3") and not env_bool("GATEHOUSE_ALLOW_SQLITE", False):
    _problems.append("DATABASE_URL points at SQLite; production needs PostgreSQL (or set GATEHOUSE_ALLOW_SQLITE=true).")

REDIS_URL = env_str("REDIS_URL")

if _problems:
    raise ImproperlyConfigured("Gatehouse cannot start in production:\n  - " + "\n  - ".join(_problems))

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
    "console",
    "providers",
    "routing",
    "budgets",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
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
    "spend-anomalies": {"task": "budgets.tasks.spend_anomalies", "schedule": 3600.0},
    "finops-digest": {"task": "budgets.tasks.finops_digest", "schedule": 7 * 24 * 3600.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "console.api.authentication.AdminTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["console.api.permissions.IsOrganizationMember"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
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
}

# The data plane.
GATEHOUSE = {
    "MAX_BODY_BYTES": env_int("GATEHOUSE_MAX_BODY_BYTES", 4 * 1024 * 1024),
    "USAGE_FLUSH_INTERVAL": env_float("GATEHOUSE_USAGE_FLUSH_INTERVAL", 0.1),
    "USAGE_BUFFER_MAX": env_int("GATEHOUSE_USAGE_BUFFER_MAX", 50_000),
    "CHANGE_POLL_INTERVAL": env_float("GATEHOUSE_CHANGE_POLL_INTERVAL", 0.25),
    "UPSTREAM_MAX_CONNECTIONS": env_int("GATEHOUSE_UPSTREAM_MAX_CONNECTIONS", 512),
    "DEFAULT_TIMEOUT": env_float("GATEHOUSE_DEFAULT_TIMEOUT", 120.0),
    "MAX_ATTEMPTS": env_int("GATEHOUSE_MAX_ATTEMPTS", 3),
    # The stock adrf dispatch runs authentication in a thread; kept switchable so
    # `make bench` can show what the async dispatch saves.
    "STOCK_DRF_DISPATCH": env_bool("GATEHOUSE_STOCK_DRF_DISPATCH", False),
    "SIMULATOR": env_bool("GATEHOUSE_SIMULATOR", not PRODUCTION),
    "SIMULATOR_URL": env_str("GATEHOUSE_SIMULATOR_URL", "http://127.0.0.1:8000/sim"),
    "DEMO_PASSWORD": env_str("GATEHOUSE_DEMO_PASSWORD", ""),
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
