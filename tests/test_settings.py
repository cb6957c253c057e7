"""Production refuses to start on missing or unsafe settings, with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def start(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    return start_with(env, tmp_path, "print('started')")


def production_env(**override: str) -> dict[str, str]:
    """A production configuration that starts (on SQLite, allowed explicitly)."""
    return {
        "GATEHOUSE_ENV": "production",
        "SECRET_KEY": "k3Y-q" * 12,
        "GATEHOUSE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "GATEHOUSE_ALLOWED_HOSTS": "gateway.example.com",
        "GATEHOUSE_ALLOW_SQLITE": "true",
        **override,
    }


def start_with(env: dict[str, str], tmp_path, script: str) -> subprocess.CompletedProcess:
    """Run `script` in a fresh process whose settings come from `env` alone."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEHOUSE_", "DATABASE_URL", "SECRET_KEY"))}
    base["GATEHOUSE_DATA_DIR"] = str(tmp_path)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='gatehouse.settings'; django.setup(); " + script,
        ],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_without_settings_fails_and_names_each_problem(tmp_path):
    result = start({"GATEHOUSE_ENV": "production"}, tmp_path)
    assert result.returncode != 0
    for needle in (
        "SECRET_KEY is not set",
        "GATEHOUSE_ENCRYPTION_KEYS is not set",
        "GATEHOUSE_ALLOWED_HOSTS",
        "DATABASE_URL points at SQLite",
    ):
        assert needle in result.stderr
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"SECRET_KEY": "short"}, "SECRET_KEY is too short"),
        ({"SECRET_KEY": "a" * 40}, "SECRET_KEY is too short"),
        ({"SECRET_KEY": "abab" * 20}, "SECRET_KEY is too short"),
        ({"SECRET_KEY": "django-insecure-" + "x1y2z3" * 10}, "SECRET_KEY is too short"),
        ({"GATEHOUSE_ALLOWED_HOSTS": "gateway.example.com,.com"}, "matches every host of a top-level domain"),
        ({"GATEHOUSE_SIMULATOR": "true"}, "GATEHOUSE_SIMULATOR cannot be on in production"),
        ({"GATEHOUSE_ENCRYPTION_KEYS": "not-a-fernet-key"}, "not a Fernet key"),
        ({"GATEHOUSE_ALLOWED_HOSTS": "*"}, "GATEHOUSE_ALLOWED_HOSTS"),
        ({"GATEHOUSE_DEBUG": "true"}, "GATEHOUSE_DEBUG must be false"),
        ({"DATABASE_URL": "mysql://x/y"}, "scheme 'mysql' is not supported"),
    ],
)
def test_production_rejects_unsafe_values(tmp_path, override, needle):
    good = {
        "GATEHOUSE_ENV": "production",
        "SECRET_KEY": "k3Y-q" * 12,
        "GATEHOUSE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "GATEHOUSE_ALLOWED_HOSTS": "gateway.example.com",
        "DATABASE_URL": "postgres://gatehouse@db.example.com/gatehouse",
    }
    assert start(good, tmp_path).stdout.strip() == "started"
    result = start({**good, **override}, tmp_path)
    assert result.returncode != 0
    assert needle in result.stderr


def test_embedded_default_generates_and_keeps_its_secrets(tmp_path):
    assert start({}, tmp_path).stdout.strip() == "started"
    secret = (tmp_path / "secret_key").read_text()
    key = (tmp_path / "encryption_key").read_text()
    assert len(secret) >= 50
    Fernet(key)
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    start({}, tmp_path)
    assert (tmp_path / "secret_key").read_text() == secret
