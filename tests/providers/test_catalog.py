"""The built-in catalog, seed_catalog, import_prices and the registry selectors."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from console import services as console_services
from providers import services as provider_services
from providers.catalog import CatalogError, catalog_load, price_parse
from providers.litellm import litellm_entry_convert, litellm_rows, per_million
from providers.models import ModelCard
from providers.selectors import deployment_list_for, model_list, provider_list_for, vendor_list

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "litellm_prices_sample.json"

# The prices the business case is built on: (input, output) USD per 1M tokens.
TABLE = {
    "gpt-5.5": ("15", "60"),
    "claude-opus-4-6": ("5", "25"),
    "gemini-3.1-pro": ("2", "12"),
    "gpt-5.4-mini": ("1.5", "6"),
    "claude-sonnet-4-6": ("3", "15"),
    "gpt-4o-mini": ("0.15", "0.60"),
    "gemini-flash-lite": ("0.10", "0.40"),
    "deepseek-v4-pro": ("0.27", "1.10"),
    "qwen-3.5": ("0.40", "1.60"),
}
SELF_HOSTED = ("llama-4-maverick", "mistral-large")


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --------------------------------------------------------------------------- catalog file


def test_catalog_holds_at_least_40_models_from_the_major_vendors():
    catalog = catalog_load()
    assert len(catalog.models) >= 40
    vendors = {row["vendor"] for row in catalog.models}
    assert {"openai", "anthropic", "google", "mistral", "meta", "deepseek", "qwen", "cohere", "xai"} <= vendors
    embeddings = [row["name"] for row in catalog.models if row["capabilities"] == ["embeddings"]]
    assert {"text-embedding-3-small", "text-embedding-3-large", "gemini-embedding"} <= set(embeddings)


def test_catalog_table_prices_are_exact_decimals():
    cards = {row["name"]: row for row in catalog_load().models}
    for name, (price_in, price_out) in TABLE.items():
        card = cards[name]
        assert isinstance(card["input_price"], Decimal) and card["input_price"] == Decimal(price_in), name
        assert isinstance(card["output_price"], Decimal) and card["output_price"] == Decimal(price_out), name
        assert not card["operator_priced"]
    for name in SELF_HOSTED:
        assert cards[name]["operator_priced"] is True
        assert cards[name]["input_price"] == cards[name]["output_price"] == Decimal(0)
        assert cards[name]["tier"] == "open-weight"


def test_catalog_entries_are_complete():
    for row in catalog_load().models:
        assert row["display_name"] and row["description"] and row["capabilities"], row["name"]
        assert row["tier"] in {"frontier", "mid", "open-weight", "edge"}
        assert row["context_window"] > 0


def test_a_broken_catalog_names_the_entry(tmp_path):
    bad = tmp_path / "catalog.yaml"
    bad.write_text(
        "vendors:\n  openai: {display_name: OpenAI, wire: openai}\n"
        "models:\n  - name: x\n    vendor: openai\n    input_price: 'cheap'\n"
    )
    with pytest.raises(CatalogError) as caught:
        catalog_load(path=bad)
    assert "models[0].input_price" in str(caught.value)
    assert str(bad) in str(caught.value)


def test_price_parse_takes_floats_through_str():
    assert price_parse(0.1) == Decimal("0.1")
    assert price_parse("0.60") == Decimal("0.60")
    with pytest.raises(ValueError):
        price_parse("0.0000001")
    with pytest.raises(ValueError):
        price_parse(True)


# --------------------------------------------------------------------------- seed_catalog


@pytest.mark.django_db
def test_seed_catalog_loads_exact_prices_and_a_second_run_changes_nothing():
    first = run("seed_catalog")
    count = ModelCard.objects.count()
    assert count >= 40
    assert f"{count} created, 0 updated" in first
    for name, (price_in, price_out) in TABLE.items():
        card = ModelCard.objects.get(name=name)
        assert card.input_price == Decimal(price_in) and card.output_price == Decimal(price_out)
        assert card.source == "catalog"
    events = AuditEvent.objects.count()
    stamps = dict(ModelCard.objects.values_list("name", "updated_at"))

    second = run("seed_catalog")

    assert f"0 created, 0 updated, {count} unchanged" in second
    assert AuditEvent.objects.count() == events
    assert dict(ModelCard.objects.values_list("name", "updated_at")) == stamps


@pytest.mark.django_db
def test_seed_catalog_keeps_the_operator_price_of_self_hosted_models():
    run("seed_catalog")
    provider_services.model_card_upsert(name="llama-4-maverick", input_price="0.25", output_price="0.75")
    output = run("seed_catalog")
    card = ModelCard.objects.get(name="llama-4-maverick")
    assert (card.input_price, card.output_price) == (Decimal("0.25"), Decimal("0.75"))
    assert "0 updated" in output


@pytest.mark.django_db
def test_seed_catalog_restores_a_changed_catalog_field():
    run("seed_catalog")
    provider_services.model_card_upsert(name="gpt-5.5", input_price="99")
    assert "1 updated" in run("seed_catalog")
    assert ModelCard.objects.get(name="gpt-5.5").input_price == Decimal("15")


# --------------------------------------------------------------------------- conversion


def test_per_token_costs_become_exact_per_million_prices():
    assert per_million(Decimal("1.5e-07")) == (Decimal("0.15"), False)
    assert str(per_million(Decimal("1.5e-07"))[0]) == "0.15"
    assert per_million(1.5e-07) == (Decimal("0.15"), False)  # a float goes through str, exactly
    assert per_million(Decimal("3.75e-08"))[0] == Decimal("0.0375")
    assert per_million(Decimal("5.46875e-07"))[0] == Decimal("0.546875")
    assert per_million(0) == (Decimal(0), False)
    assert per_million(Decimal("5.5e-13")) == (Decimal("0.000001"), True)  # past 6 places: rounded, and said


def test_litellm_entry_maps_mode_provider_and_capabilities():
    data = json.loads(SAMPLE.read_text(), parse_float=Decimal)
    fields, rounded = litellm_entry_convert("gpt-4o-mini", data["gpt-4o-mini"], today=date(2026, 1, 1))
    assert not rounded
    assert fields["vendor"] == "openai"
    assert fields["capabilities"] == ["chat", "json_mode", "streaming", "tools", "vision"]
    assert (fields["input_price"], fields["output_price"], fields["cached_input_price"]) == (
        Decimal("0.15"),
        Decimal("0.6"),
        Decimal("0.075"),
    )
    assert (fields["context_window"], fields["max_output_tokens"]) == (128000, 16384)
    groq, _ = litellm_entry_convert(
        "groq/llama-3.3-70b-versatile", data["groq/llama-3.3-70b-versatile"], today=date(2026, 1, 1)
    )
    assert (groq["vendor"], groq["tier"]) == ("meta", "open-weight")
    embedding, _ = litellm_entry_convert(
        "text-embedding-3-small", data["text-embedding-3-small"], today=date(2026, 1, 1)
    )
    assert embedding["capabilities"] == ["embeddings"]
    assert embedding["input_price"] == Decimal("0.02") == embedding["cached_input_price"]


def test_litellm_rows_skip_with_reasons():
    data = json.loads(SAMPLE.read_text(), parse_float=Decimal)
    prices = litellm_rows(data, modes={"chat", "embedding"}, today=date(2026, 1, 1))
    assert len(prices.rows) == 12
    assert prices.skipped["sample_spec (the format's own description)"] == 1
    assert prices.skipped["mode image_generation not selected"] == 1
    assert prices.skipped["mode audio_transcription not selected"] == 1
    assert prices.skipped["no per-token price"] == 1


# --------------------------------------------------------------------------- import_prices


@pytest.mark.django_db
def test_import_prices_converts_the_sample_exactly():
    output = run("import_prices", str(SAMPLE))

    assert "12 created, 0 updated, 0 unchanged, 4 skipped" in output
    assert "mode image_generation not selected" in output and "no per-token price" in output
    expected = {
        "gpt-4o-mini": ("0.15", "0.6", "0.075"),
        "gpt-4.1": ("2", "8", "0.5"),
        "claude-sonnet-4-5-20250929": ("3", "15", "0.3"),
        "gemini/gemini-2.5-flash": ("0.3", "2.5", "0.075"),
        "deepseek/deepseek-chat": ("0.27", "1.1", "0.07"),
        "command-r7b-12-2024": ("0.0375", "0.15", "0.0375"),
        "text-embedding-3-large": ("0.13", "0", "0.13"),
        "mistral/mistral-large-latest": ("2", "6", "2"),
    }
    for name, prices in expected.items():
        card = ModelCard.objects.get(name=name)
        assert (card.input_price, card.output_price, card.cached_input_price) == tuple(map(Decimal, prices)), name
        assert card.source == "import"
    assert ModelCard.objects.get(name="claude-3-haiku-20240307").lifecycle == "deprecated"
    assert ModelCard.objects.get(name="xai/grok-4").vendor == "xai"
    assert ModelCard.objects.get(name="gemini/gemini-2.5-flash").vendor == "google"
    assert not ModelCard.objects.filter(name__in=["sample_spec", "dall-e-3", "whisper-1", "chat-bison"]).exists()


@pytest.mark.django_db
def test_import_prices_twice_changes_nothing():
    run("import_prices", str(SAMPLE))
    events = AuditEvent.objects.count()
    assert "0 created, 0 updated, 12 unchanged" in run("import_prices", str(SAMPLE))
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
def test_import_prices_dry_run_writes_nothing():
    output = run("import_prices", str(SAMPLE), "--dry-run")
    assert "would create 12, update 0" in output
    assert ModelCard.objects.count() == 0
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_import_prices_filters_by_mode_and_provider():
    run("import_prices", str(SAMPLE), "--only-mode", "embedding")
    assert set(ModelCard.objects.values_list("name", flat=True)) == {"text-embedding-3-small", "text-embedding-3-large"}
    run("import_prices", str(SAMPLE), "--provider", "anthropic")
    assert set(ModelCard.objects.filter(vendor="anthropic").values_list("name", flat=True)) == {
        "claude-sonnet-4-5-20250929",
        "claude-3-haiku-20240307",
    }
    run("import_prices", str(SAMPLE), "--provider", "meta")  # a vendor works as well as a litellm_provider
    assert ModelCard.objects.filter(name="groq/llama-3.3-70b-versatile").exists()


@pytest.mark.django_db
def test_import_prices_changes_only_prices_of_curated_cards():
    run("seed_catalog")
    provider_services.model_card_upsert(name="gpt-4.1", input_price="2.20")
    output = run("import_prices", str(SAMPLE))
    card = ModelCard.objects.get(name="gpt-4.1")
    assert card.input_price == Decimal("2")
    assert (card.display_name, card.source, card.tier) == ("GPT-4.1", "catalog", "mid")
    assert ModelCard.objects.get(name="gpt-4o-mini").display_name == "GPT-4o Mini"
    assert "1 updated" in output


@pytest.mark.django_db
def test_import_prices_leaves_operator_priced_cards_alone(tmp_path):
    run("seed_catalog")
    price_list = tmp_path / "prices.json"
    entry = {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06, "litellm_provider": "together_ai"}
    price_list.write_text(json.dumps({"llama-4-maverick": {**entry, "mode": "chat"}}))
    output = run("import_prices", str(price_list))
    assert ModelCard.objects.get(name="llama-4-maverick").input_price == Decimal(0)
    assert "operator-priced model" in output


@pytest.mark.django_db
def test_import_prices_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("import_prices", str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"gpt-4o-mini": {"input_cost_per_token": 1.5e-07,}')
    with pytest.raises(CommandError, match=r"not valid JSON \(line 1"):
        run("import_prices", str(broken))
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(CommandError, match="expected a JSON object"):
        run("import_prices", str(listing))
    with pytest.raises(CommandError, match="image_generation cannot be imported"):
        run("import_prices", str(SAMPLE), "--only-mode", "image_generation")
    assert ModelCard.objects.count() == 0


@pytest.mark.django_db
def test_import_prices_handles_thousands_of_entries_in_batches(tmp_path, django_assert_max_num_queries):
    # Written as text so the costs keep LiteLLM's literal scientific notation.
    entries = ",".join(
        f'"bulk-model-{i}": {{"input_cost_per_token": {i + 1}e-08, "output_cost_per_token": 2e-07, '
        f'"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 32000}}'
        for i in range(3000)
    )
    path = tmp_path / "big.json"
    path.write_text("{" + entries + "}")
    with django_assert_max_num_queries(250):  # batches, never a query per entry
        output = run("import_prices", str(path))
    assert "3000 created" in output
    assert ModelCard.objects.get(name="bulk-model-14").input_price == Decimal("0.15")
    assert "0 created, 0 updated, 3000 unchanged" in run("import_prices", str(path))


# --------------------------------------------------------------------------- selectors


@pytest.fixture
def registry(db):
    run("seed_catalog")
    owner = console_services.user_create(username="sel-owner")
    org = console_services.organization_create(name="Sel Org", owner=owner)
    other = console_services.organization_create(name="Other Org", owner=owner)
    shared = provider_services.provider_create(name="shared", kind="openai", base_url="sim://openai/v1", secret="s")
    own = provider_services.provider_create(
        name="own", kind="anthropic", base_url="sim://anthropic", secret="s", organization=org
    )
    foreign = provider_services.provider_create(
        name="foreign", kind="openai", base_url="sim://openai/v1", secret="s", organization=other
    )
    for provider, model in ((shared, "gpt-4o-mini"), (own, "claude-sonnet-4-6"), (foreign, "gpt-5.5")):
        provider_services.deployment_create(model=ModelCard.objects.get(name=model), provider=provider)
    return org


def test_model_list_filters(registry):
    assert set(model_list(vendor="anthropic").values_list("vendor", flat=True)) == {"anthropic"}
    assert all(card.tier == "frontier" for card in model_list(tier="frontier"))
    assert [card.name for card in model_list(search="Maverick")] == ["llama-4-maverick"]
    assert {card.lifecycle for card in model_list(lifecycle="deprecated")} == {"deprecated"}
    assert model_list(search="gpt-4o-mini").get(name="gpt-4o-mini").deployment_count == 1


def test_vendor_list_counts_models_per_vendor(registry):
    vendors = {v.vendor: v for v in vendor_list()}
    assert vendors["anthropic"].display_name == "Anthropic"
    assert vendors["openai"].models == ModelCard.objects.filter(vendor="openai").count()


def test_provider_and_deployment_lists_hold_shared_and_own_only(registry, django_assert_num_queries):
    assert [p.name for p in provider_list_for(organization=registry)] == ["own", "shared"]
    with django_assert_num_queries(1):
        rows = [(d.model.name, d.provider.name) for d in deployment_list_for(organization=registry)]
    assert rows == [("claude-sonnet-4-6", "own"), ("gpt-4o-mini", "shared")]
