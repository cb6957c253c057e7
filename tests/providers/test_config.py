"""Config-as-code: export_config / apply_config."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
import yaml
from django.apps import apps
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from console import services as console_services
from gatehouse.config import Change, config_export
from providers import services as provider_services
from providers.models import Deployment, ModelCard, Provider


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def org(db):
    owner = console_services.user_create(username="cfg-owner")
    return console_services.organization_create(name="Acme", slug="acme", owner=owner)


@pytest.fixture
def registry(org):
    """A small registry as an operator would build it, every secret by variable name."""
    cards = {}
    for name, vendor, price_in, price_out, caps in (
        ("gpt-4o-mini", "openai", "0.15", "0.60", ["chat", "streaming", "tools"]),
        ("claude-sonnet-4-6", "anthropic", "3", "15", ["chat", "streaming"]),
        ("text-embedding-3-small", "openai", "0.02", "0", ["embeddings"]),
        ("llama-4-maverick", "meta", "0.2", "0.6", ["chat"]),
    ):
        cards[name], _ = provider_services.model_card_upsert(
            name=name,
            vendor=vendor,
            display_name=name.upper(),
            input_price=price_in,
            output_price=price_out,
            cached_input_price=price_in,
            capabilities=caps,
            description="A model: with a colon, and 'quotes'.",
            version="2024-07-18" if name == "gpt-4o-mini" else "",
        )
    openai = provider_services.provider_create(
        name="openai",
        kind="openai",
        base_url="https://api.openai.com/v1/",
        secret_env="OPENAI_API_KEY",
        extra_headers={"OpenAI-Organization": "org-acme", "x-route": "eu"},
    )
    anthropic = provider_services.provider_create(
        name="anthropic", kind="anthropic", base_url="https://api.anthropic.com", secret_env="ANTHROPIC_API_KEY"
    )
    vllm = provider_services.provider_create(
        name="acme-vllm", kind="openai", base_url="http://gpu-1.internal:8000/v1", organization=org
    )
    provider_services.provider_update(provider=vllm, is_active=False)
    provider_services.deployment_create(model=cards["gpt-4o-mini"], provider=openai, weight=3)
    provider_services.deployment_create(model=cards["text-embedding-3-small"], provider=openai)
    provider_services.deployment_create(model=cards["claude-sonnet-4-6"], provider=anthropic, timeout=45.5)
    dep = provider_services.deployment_create(
        model=cards["llama-4-maverick"], provider=vllm, upstream_model="meta-llama/Llama-4-Maverick"
    )
    provider_services.deployment_update(deployment=dep, is_active=False)
    return cards


def registry_wipe() -> None:
    for deployment in Deployment.objects.select_related("provider"):
        provider_services.deployment_delete(deployment=deployment)
    for provider in Provider.objects.all():
        provider_services.provider_delete(provider=provider)
    ModelCard.objects.all().delete()  # no service deletes cards (prune retires them)


def test_export_apply_export_is_byte_identical(registry, tmp_path):
    path = tmp_path / "gatehouse.yaml"
    run("export_config", str(path))
    first = path.read_bytes()
    registry_wipe()
    assert not ModelCard.objects.exists()

    output = run("apply_config", str(path))
    assert "11 created, 0 updated, 0 pruned, 0 unchanged" in output

    second = tmp_path / "again.yaml"
    run("export_config", str(second))
    assert second.read_bytes() == first


def test_export_is_stable_and_keeps_prices_as_strings(registry):
    text = config_export()
    assert text == config_export()
    document = yaml.safe_load(text)
    # The catalog, each organization's layer over it (private models, its settings), then the rest.
    assert list(document)[:6] == ["version", "models", "private_models", "model_settings", "providers", "deployments"]
    mini = next(m for m in document["models"] if m["name"] == "gpt-4o-mini")
    assert mini["input_price"] == "0.15" and mini["output_price"] == "0.6"
    assert list(mini)[:4] == ["name", "display_name", "vendor", "version"]
    assert [p["name"] for p in document["providers"]] == ["acme-vllm", "anthropic", "openai"]
    vllm = document["providers"][0]
    assert vllm["organization"] == "acme" and vllm["is_active"] is False


def test_second_apply_changes_nothing_and_says_so(registry, tmp_path):
    path = tmp_path / "gatehouse.yaml"
    path.write_text(config_export())
    events = AuditEvent.objects.count()
    output = run("apply_config", str(path))
    assert "nothing to change" in output and "unchanged" in output
    assert AuditEvent.objects.count() == events


def test_apply_updates_only_what_changed(registry, tmp_path):
    document = yaml.safe_load(config_export())
    mini = next(m for m in document["models"] if m["name"] == "gpt-4o-mini")
    mini["input_price"] = "0.14"
    document["deployments"][0]["weight"] = 5
    path = tmp_path / "gatehouse.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))

    output = run("apply_config", str(path))

    assert "update    models/gpt-4o-mini: input_price" in output
    assert "1 updated" not in output and "2 updated" in output
    assert ModelCard.objects.get(name="gpt-4o-mini").input_price == Decimal("0.14")
    assert Deployment.objects.get(name=document["deployments"][0]["name"]).weight == 5


def test_a_validation_error_names_the_entry_and_applies_nothing(registry, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(
        """
models:
  - name: brand-new-model
    vendor: openai
    input_price: "1"
deployments:
  - {name: a, model: gpt-4o-mini, provider: openai}
  - {name: b, model: gpt-4o-mini, provider: openai}
  - {name: c, model: brand-new-model, provider: openai}
  - {name: d, model: gpt-9, provider: openai}
  - {name: e, model: gpt-4o-mini, provider: nowhere, weight: -1}
"""
    )
    before = (ModelCard.objects.count(), Deployment.objects.count(), AuditEvent.objects.count())
    with pytest.raises(CommandError) as caught:
        run("apply_config", str(path))
    message = str(caught.value)
    assert f"{path}: deployments[3].model: unknown model 'gpt-9'" in message
    assert f"{path}: deployments[4].weight" in message
    assert "nothing was applied" in message
    assert (ModelCard.objects.count(), Deployment.objects.count(), AuditEvent.objects.count()) == before
    assert not ModelCard.objects.filter(name="brand-new-model").exists()


def test_unknown_sections_fields_and_bad_values_are_reported(org, tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text(
        """
routes: []
models:
  - name: m
    vendor: openai
    tier: legendary
    colour: blue
providers:
  - {name: p, kind: openai, base_url: "ftp://x", secret_env: "sk-live-123"}
  - {name: q, kind: openai, base_url: "https://x", organization: nobody}
"""
    )
    with pytest.raises(CommandError) as caught:
        run("apply_config", str(path))
    message = str(caught.value)
    assert "routes: unknown section" in message
    assert "models[0].tier:" in message and "models[0].colour: unknown field" in message
    assert "providers[0].base_url:" in message and "providers[0].secret_env:" in message
    assert "providers[1].organization: unknown organization 'nobody'" in message


def test_inline_secrets_are_refused(org, tmp_path):
    path = tmp_path / "secret.yaml"
    path.write_text(
        "providers:\n"
        "  - {name: p, kind: openai, base_url: 'https://api.openai.com/v1', secret: sk-live-abc}\n"
        "  - {name: q, kind: openai, base_url: 'https://x', extra_headers: {Authorization: Bearer x}}\n"
    )
    with pytest.raises(CommandError) as caught:
        run("apply_config", str(path))
    assert "providers[0].secret: secrets are never written in config files" in str(caught.value)
    assert "providers[1].extra_headers: Authorization looks like a credential" in str(caught.value)
    assert not Provider.objects.exists()


def test_export_never_contains_a_secret(registry, tmp_path):
    stored = provider_services.provider_create(
        name="stored",
        kind="openai",
        base_url="https://api.example.com/v1",
        secret="sk-live-plaintext-123",
        extra_headers={"x-api-key": "hdr-secret-456", "x-tenant": "acme"},
    )
    text = config_export()
    assert "sk-live-plaintext-123" not in text
    assert stored.secret_encrypted and stored.secret_encrypted not in text
    assert "hdr-secret-456" not in text
    entry = next(p for p in yaml.safe_load(text)["providers"] if p["name"] == "stored")
    assert entry["secret_stored"] is True
    assert entry["secret_headers"] == ["x-api-key"]
    assert entry["extra_headers"] == {"x-tenant": "acme"}

    # Applying the export keeps the stored secret and the credential header as they are.
    path = tmp_path / "gatehouse.yaml"
    path.write_text(text)
    assert "nothing to change" in run("apply_config", str(path))
    stored.refresh_from_db()
    assert stored.extra_headers["x-api-key"] == "hdr-secret-456"
    assert stored.secret_encrypted


def test_dry_run_prints_the_plan_and_changes_nothing(registry, tmp_path):
    document = yaml.safe_load(config_export())
    document["models"].append({"name": "new-model", "vendor": "openai", "input_price": "1"})
    document["models"][0]["description"] = "changed"
    document["deployments"] = [d for d in document["deployments"] if d["provider"] != "anthropic"]
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    before = (ModelCard.objects.count(), Deployment.objects.count(), AuditEvent.objects.count())

    output = run("apply_config", str(path), "--dry-run", "--prune")

    assert "create    models/new-model" in output
    assert f"update    models/{document['models'][0]['name']}: description" in output
    assert "unchanged models/gpt-4o-mini" in output
    assert "prune     deployments/claude-sonnet-4-6@anthropic: delete" in output
    assert "1 to create, 1 to update, 1 to prune" in output
    assert (ModelCard.objects.count(), Deployment.objects.count(), AuditEvent.objects.count()) == before


def test_prune_removes_what_the_file_no_longer_lists(registry, tmp_path):
    document = yaml.safe_load(config_export())
    document["models"] = [m for m in document["models"] if m["name"] != "llama-4-maverick"]
    document["providers"] = [p for p in document["providers"] if p["name"] != "acme-vllm"]
    document["deployments"] = [d for d in document["deployments"] if d["provider"] != "acme-vllm"]
    path = tmp_path / "pruned.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))

    output = run("apply_config", str(path), "--prune")

    assert "pruned" in output
    assert not Provider.objects.filter(name="acme-vllm").exists()
    assert not Deployment.objects.filter(provider__name="acme-vllm").exists()
    assert ModelCard.objects.get(name="llama-4-maverick").lifecycle == "retired"
    assert "nothing to change" in run("apply_config", str(path), "--prune")


def test_without_prune_unlisted_entries_stay(registry, tmp_path):
    path = tmp_path / "partial.yaml"
    path.write_text("deployments:\n  - {name: extra, model: gpt-4o-mini, provider: anthropic}\n")
    run("apply_config", str(path))
    assert Deployment.objects.count() == 5
    assert Deployment.objects.get(name="extra").upstream_model == "gpt-4o-mini"


class FakeSection:
    """Stands for a section another app (budgets, routes) declares on its AppConfig."""

    name = "budgets"
    order = 40

    def existing_names(self):
        return set()

    def export(self):
        return [{"name": "monthly", "amount": "1000"}]

    def plan(self, entries, *, context, problems):
        if "gpt-4o-mini" not in context.names_after("models"):
            problems.append("budgets[0].model: unknown")
        return [Change(self.name, entry["name"], "unchanged") for entry in entries]


def test_other_apps_add_sections_through_their_app_config(registry, monkeypatch):
    monkeypatch.setattr(apps.get_app_config("budgets"), "config_sections", lambda: [FakeSection()], raising=False)
    text = config_export()
    assert list(yaml.safe_load(text))[-1] == "budgets"
    assert "amount: '1000'" in text
