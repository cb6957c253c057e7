"""Management commands: create_key, rotate_secrets, seed_demo, demo_traffic."""

from __future__ import annotations

import re
import stat
import time
from decimal import Decimal
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings

from audit.models import AuditEvent
from console import services as console_services
from console.keycache import key_context_load
from console.models import ApiKey, Membership, Organization, Team
from console.services import secret_hash
from gatehouse.crypto import secret_decrypt
from providers import services as provider_services
from providers.models import Deployment, ModelCard, Provider
from tests.conftest import FAST, free_port, gateway_sync

FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def quick(settings):
    """Fast password hashing, no demo password and no vendor keys in the environment."""
    settings.PASSWORD_HASHERS = FAST_HASHER
    settings.GATEHOUSE = {**django_settings.GATEHOUSE, "DEMO_PASSWORD": ""}
    settings.GATEHOUSE_ENV_SECRETS = {}  # the environment as settings read it: no vendor keys
    return settings


# --------------------------------------------------------------------------- create_key


@pytest.fixture
def acme(db):
    owner = console_services.user_create(username="key-owner")
    org = console_services.organization_create(name="Acme", slug="acme", owner=owner)
    console_services.team_create(organization=org, name="Research")
    provider_services.model_card_upsert(name="gpt-4o-mini", vendor="openai", capabilities=["chat"])
    provider_services.model_card_upsert(name="claude-sonnet-4-6", vendor="anthropic", capabilities=["chat"])
    return org


def test_create_key_prints_a_secret_that_authenticates(acme):
    output = run(
        "create_key",
        "--org=acme",
        "--name=ci pipeline",
        "--team=Research",
        "--user=key-owner",
        "--models=gpt-4o-mini,claude-sonnet-4-6",
        "--expires-in-days=30",
        "--classification=confidential",
    )
    secret = re.search(r"Secret \(shown once, store it now\): (\S+)", output).group(1)
    assert f"prefix {secret[:12]}" in output
    context = key_context_load(secret_hash(secret))
    assert context is not None
    assert context.organization_id == acme.id
    assert context.team_id == Team.objects.get(name="Research").id
    assert context.allowed_models == frozenset({"gpt-4o-mini", "claude-sonnet-4-6"})
    assert context.data_classification == "confidential"
    assert context.expires_at is not None and context.expires_at > time.time() + 29 * 86400
    assert ApiKey.objects.get(secret_hash=secret_hash(secret)).name == "ci pipeline"
    assert secret not in str(ApiKey.objects.values_list())  # only the hash is stored


def test_create_key_secret_only_prints_just_the_secret(acme):
    output = run("create_key", "--org=acme", "--name=script", "--secret-only").strip()
    assert output.startswith("sk-gh-") and "\n" not in output
    assert key_context_load(secret_hash(output)) is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org=nobody"], "No organization with slug 'nobody'"),
        (["--org=acme", "--team=Nope"], "No team 'Nope'"),
        (["--org=acme", "--user=ghost"], "No user 'ghost'"),
        (["--org=acme", "--models=gpt-9"], "unknown model 'gpt-9'"),
        (["--org=acme", "--expires-in-days=0"], "--expires-in-days"),
    ],
)
def test_create_key_refuses_bad_arguments(acme, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run("create_key", "--name=x", *args)
    assert not ApiKey.objects.exists()


# --------------------------------------------------------------------------- rotate_secrets


@pytest.mark.django_db
def test_rotate_secrets_re_encrypts_under_the_new_key():
    old = django_settings.ENCRYPTION_KEYS[0]
    provider = provider_services.provider_create(
        name="openai", kind="openai", base_url="https://api.openai.com/v1", secret="sk-live-rotate-me"
    )
    provider_services.provider_create(name="by-env", kind="openai", base_url="https://x/v1", secret_env="X_KEY")
    before = provider.secret_encrypted
    new = Fernet.generate_key().decode()

    with override_settings(ENCRYPTION_KEYS=[new, old]):
        output = run("rotate_secrets")
        provider.refresh_from_db()
        assert secret_decrypt(provider.secret_encrypted) == "sk-live-rotate-me"

    assert "Re-encrypted 1 provider secret " in output
    assert provider.secret_encrypted != before
    assert Fernet(new.encode()).decrypt(provider.secret_encrypted.encode()) == b"sk-live-rotate-me"
    with override_settings(ENCRYPTION_KEYS=[new]):  # the old key can go now
        assert secret_decrypt(provider.secret_encrypted) == "sk-live-rotate-me"


@pytest.mark.django_db
def test_rotate_secrets_without_the_old_key_changes_nothing():
    provider = provider_services.provider_create(name="p", kind="openai", base_url="https://x/v1", secret="s")
    before = provider.secret_encrypted
    with (
        override_settings(ENCRYPTION_KEYS=[Fernet.generate_key().decode()]),
        pytest.raises(CommandError, match="cannot be decrypted"),
    ):
        run("rotate_secrets")
    provider.refresh_from_db()
    assert provider.secret_encrypted == before


# --------------------------------------------------------------------------- seed_demo


def demo_counts() -> dict[str, int]:
    User = get_user_model()
    return {
        "users": User.objects.count(),
        "organizations": Organization.objects.count(),
        "memberships": Membership.objects.count(),
        "teams": Team.objects.count(),
        "models": ModelCard.objects.count(),
        "providers": Provider.objects.count(),
        "deployments": Deployment.objects.count(),
        "keys": ApiKey.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


@pytest.mark.django_db
def test_seed_demo_twice_is_idempotent_and_serves_every_active_model(quick, tmp_path):
    key_file = tmp_path / "demo_key.txt"
    first = run("seed_demo", f"--key-file={key_file}")
    counts = demo_counts()
    secret = key_file.read_text().strip()

    second = run("seed_demo", f"--key-file={key_file}")

    assert demo_counts() == counts
    assert "nothing created" in second
    assert key_file.read_text().strip() == secret
    assert secret in first and secret not in second

    org = Organization.objects.get(slug="acme")
    assert org.name == "Acme Corp"
    roles = dict(Membership.objects.filter(organization=org).values_list("user__username", "role"))
    assert roles == {"admin": "owner", "finance": "finance", "dev": "member"}
    assert set(Team.objects.filter(organization=org).values_list("name", flat=True)) == {
        "Research",
        "Support",
        "Platform",
    }
    assert ApiKey.objects.filter(organization=org, revoked_at__isnull=True).count() == 3
    assert counts["models"] >= 40 and counts["deployments"] > 40

    for card in ModelCard.objects.filter(lifecycle="active"):
        if card.has("chat") or card.has("embeddings"):
            assert Deployment.objects.filter(model=card, provider__name__startswith="sim-").exists(), card.name
    assert Deployment.objects.get(name="claude-opus-4-6@sim-anthropic").upstream_model == "claude-opus-4-6"
    assert Deployment.objects.filter(name="gemini-3.1-pro@sim-gemini").exists()
    assert Deployment.objects.filter(name="deepseek-v4-pro@sim-openai").exists()
    assert Deployment.objects.filter(name="gpt-5.5@sim-azure").exists()
    kinds = dict(Provider.objects.filter(name__startswith="sim-").values_list("base_url", "kind"))
    assert kinds == {
        "sim://openai/v1": "openai",
        "sim://anthropic": "anthropic",
        "sim://gemini/v1beta": "gemini",
        "sim://azure": "azure_openai",
    }
    assert ModelCard.objects.get(name="llama-4-maverick").input_price == Decimal("0.20")

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    context = key_context_load(secret_hash(secret))
    assert context is not None and context.team_id == Team.objects.get(name="Research").id


@pytest.mark.django_db
def test_seed_demo_keeps_edits_made_to_catalog_cards(quick, tmp_path):
    run("seed_demo", f"--key-file={tmp_path / 'k'}")
    provider_services.model_card_upsert(name="gpt-4o-mini", input_price="0.12")
    run("seed_demo", f"--key-file={tmp_path / 'k'}")
    assert ModelCard.objects.get(name="gpt-4o-mini").input_price == Decimal("0.12")


@pytest.mark.django_db
def test_seed_demo_prints_a_generated_password_once(quick, tmp_path):
    first = run("seed_demo", f"--key-file={tmp_path / 'k'}")
    password = re.search(r"Console login for admin, finance, dev: password (\S+)", first).group(1)
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert password not in run("seed_demo", f"--key-file={tmp_path / 'k'}")


@pytest.mark.django_db
def test_seed_demo_password_from_the_environment_is_printed_each_time(quick, tmp_path):
    quick.GATEHOUSE = {**quick.GATEHOUSE, "DEMO_PASSWORD": "Demo-Pass-4821"}
    assert "Demo-Pass-4821" in run("seed_demo", f"--key-file={tmp_path / 'k'}")
    assert "admin / Demo-Pass-4821" in run("seed_demo", f"--key-file={tmp_path / 'k'}")
    assert get_user_model().objects.get(username="admin").check_password("Demo-Pass-4821")


@pytest.mark.django_db
def test_seed_demo_rotates_the_demo_key_when_its_file_is_gone(quick, tmp_path):
    key_file = tmp_path / "demo_key.txt"
    run("seed_demo", f"--key-file={key_file}")
    old = key_file.read_text().strip()
    key_file.unlink()
    run("seed_demo", f"--key-file={key_file}")
    new = key_file.read_text().strip()
    assert new != old
    assert key_context_load(secret_hash(old)).revoked
    assert not key_context_load(secret_hash(new)).revoked


@pytest.mark.django_db
def test_seed_demo_adds_real_providers_by_variable_name_and_deactivates_them(quick, tmp_path):
    key_file = tmp_path / "k"
    quick.GATEHOUSE_ENV_SECRETS = {"OPENAI_API_KEY": "sk-live-never-copied", "GROQ_API_KEY": "gsk-never-copied"}
    run("seed_demo", f"--key-file={key_file}")

    openai = Provider.objects.get(name="openai")
    assert (openai.secret_env, openai.secret_encrypted, openai.base_url) == (
        "OPENAI_API_KEY",
        "",
        "https://api.openai.com/v1",
    )
    assert Deployment.objects.filter(provider=openai, model__name="gpt-5.5").exists()
    assert not Deployment.objects.filter(provider=openai, model__name="gpt-oss-120b").exists()  # self-hosted
    groq = Deployment.objects.get(name="llama-4-maverick@groq")
    assert groq.upstream_model == "meta-llama/llama-4-maverick-17b-128e-instruct"
    assert not Provider.objects.filter(name="anthropic").exists()
    assert "sk-live-never-copied" not in str(list(Provider.objects.values_list()))

    quick.GATEHOUSE_ENV_SECRETS = {"GROQ_API_KEY": "gsk-never-copied"}
    output = run("seed_demo", f"--key-file={key_file}")
    assert "OPENAI_API_KEY is gone" in output
    assert not Provider.objects.get(name="openai").is_active
    assert Provider.objects.get(name="groq").is_active

    quick.GATEHOUSE_ENV_SECRETS = {"OPENAI_API_KEY": "sk-live-back", "GROQ_API_KEY": "gsk-never-copied"}
    run("seed_demo", f"--key-file={key_file}")
    assert Provider.objects.get(name="openai").is_active


# --------------------------------------------------------------------------- demo_traffic


def test_demo_traffic_without_a_gateway_says_so_and_exits_cleanly(tmp_path):
    key_file = tmp_path / "demo_key.txt"
    key_file.write_text("sk-gh-whatever\n")
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    output = run("demo_traffic", f"--url={url}", "--wait=0.6", f"--key-file={key_file}")
    assert "No gateway answered" in output and "no demo traffic sent" in output
    assert time.monotonic() - started < 10


def test_demo_traffic_without_a_key_file_asks_for_seed_demo(tmp_path):
    with pytest.raises(CommandError, match="run manage.py seed_demo first"):
        run("demo_traffic", f"--key-file={tmp_path / 'missing'}", "--wait=0")


def test_demo_traffic_sends_real_requests_through_the_gateway(gateway_server, transactional_db, quick, tmp_path):
    from budgets.models import UsageRecord

    key_file = tmp_path / "demo_key.txt"
    run("seed_demo", f"--key-file={key_file}")
    for provider in Provider.objects.filter(name__startswith="sim-"):
        provider_services.provider_update(provider=provider, extra_headers=FAST)
    gateway_sync()

    output = run(
        "demo_traffic",
        f"--url={gateway_server.url}",
        "--requests=15",
        "--concurrency=4",
        "--seed=7",
        f"--key-file={key_file}",
    )

    assert "Sent 15 requests" in output
    ok = int(re.search(r": (\d+) ok", output).group(1))
    assert ok >= 10, output
    org = Organization.objects.get(slug="acme")
    records = UsageRecord.objects.filter(organization_id=org.id).exclude(endpoint="models")  # the wait's probe
    deadline = time.monotonic() + 10
    while records.count() < 15 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert records.count() == 15  # every request was authenticated with the demo key
    assert records.filter(endpoint="embeddings").exists()
    assert records.filter(stream=True).exists()
    assert records.filter(status_code__gte=400).exists()  # the deliberate bad ones
    assert records.exclude(workflow="").count() == 15
    assert all(record.tags for record in records)
