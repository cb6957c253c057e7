"""The data directory and the SQLite file on every start path, readable by the owner only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent.parent


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEHOUSE_", "DATABASE_URL", "SECRET_KEY"))}
    base.pop("PYTEST_VERSION", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_migrate_with_redis_and_sqlite_in_production_creates_the_data_dir_and_a_0600_database(tmp_path):
    data_dir = tmp_path / "fresh" / "data"  # does not exist yet
    env = {
        "GATEHOUSE_ENV": "production",
        "GATEHOUSE_DATA_DIR": str(data_dir),
        "GATEHOUSE_ALLOW_SQLITE": "true",
        "GATEHOUSE_ALLOWED_HOSTS": "gateway.example",
        "GATEHOUSE_DEBUG": "false",
        "SECRET_KEY": "k3Y-q" * 12,
        "GATEHOUSE_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    result = manage(env, "migrate", "--noinput")
    assert result.returncode == 0, result.stderr[-2000:]
    database = data_dir / "gatehouse.sqlite3"
    assert database.stat().st_size > 0
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_an_existing_world_readable_database_is_made_owner_only(tmp_path):
    database = tmp_path / "gatehouse.sqlite3"
    database.touch(mode=0o644)
    os.chmod(database, 0o644)
    result = manage({"GATEHOUSE_ENV": "development", "GATEHOUSE_DATA_DIR": str(tmp_path)}, "check")
    assert result.returncode == 0, result.stderr[-2000:]
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_an_unusable_data_directory_is_named_clearly(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {"GATEHOUSE_ENV": "development", "GATEHOUSE_DATA_DIR": str(blocker / "data")}
    result = manage(env, "check")
    assert result.returncode != 0
    assert "data directory" in result.stderr and str(blocker / "data") in result.stderr


def test_a_fresh_install_seeded_twice_in_real_processes_routes_the_same(tmp_path):
    """What `make run` does on a fresh clone and again after Ctrl-C: migrate, then seed_demo."""
    env = {"GATEHOUSE_ENV": "development", "GATEHOUSE_DATA_DIR": str(tmp_path)}
    steps = [("migrate", "--noinput"), ("seed_demo",)]
    for step in steps:
        result = manage(env, *step)
        assert result.returncode == 0, result.stderr[-2000:]
    first = manage(env, "dumpdata", "providers.deployment", "providers.provider", "--natural-foreign")
    assert first.returncode == 0 and '"sim-openai"' in first.stdout
    for step in steps:
        result = manage(env, *step)
        assert result.returncode == 0, result.stderr[-2000:]
    assert "nothing created" in result.stdout and "seed_demo --reset-password" in result.stdout
    second = manage(env, "dumpdata", "providers.deployment", "providers.provider", "--natural-foreign")
    assert second.stdout == first.stdout
