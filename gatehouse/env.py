"""Reading configuration from the environment.

Every setting Gatehouse reads comes through here so that the README's table of
environment variables has one place to be checked against.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false).")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def persistent_secret(path: Path, factory) -> str:
    """A secret generated once per machine and kept in the data directory.

    The embedded default must be safe without configuration: a random value kept
    on disk beats a constant committed to the repository.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = factory()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def new_secret_key() -> str:
    return secrets.token_urlsafe(50)


def database_from_url(url: str, *, base_dir: Path) -> dict:
    """Translate DATABASE_URL (sqlite:///path or postgres://...) into Django's dict."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        raw_path = unquote(parts.path)
        # sqlite:////abs/path is absolute; sqlite:///rel/path is relative to the project.
        path = Path(raw_path[1:]) if raw_path.startswith("//") else base_dir / raw_path.lstrip("/")
        return {
            "ENGINE": "gatehouse.db.sqlite3",
            "NAME": str(path),
            "OPTIONS": {
                # WAL lets the gateway read while the usage writer writes;
                # IMMEDIATE transactions avoid upgrade deadlocks between processes.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            # One test database per test process, so concurrent runs never share a file.
            "TEST": {"NAME": str(path.with_name(f"test_{os.getpid()}_{path.name}"))},
        }
    if scheme in {"postgres", "postgresql", "pgsql"}:
        options = dict(parse_qsl(parts.query))
        pool = options.pop("pool", "true").lower() in TRUE
        db = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            # Under ASGI persistent connections leak per thread; use a pool instead.
            "CONN_MAX_AGE": 0,
            "OPTIONS": {**options},
            # One test database per test process, so concurrent runs never collide.
            "TEST": {"NAME": f"test_{unquote(parts.path.lstrip('/')) or 'postgres'}_{os.getpid()}"},
        }
        if pool:
            db["OPTIONS"]["pool"] = {"min_size": 1, "max_size": 10, "timeout": 10}
        return db
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {scheme!r} is not supported (use sqlite:///path or postgres://user@host/db)."
    )


def env_secrets() -> dict[str, str]:
    """Every variable of the environment, for provider keys named at run time (settings only)."""
    return dict(os.environ)
