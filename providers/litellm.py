"""Importing LiteLLM's price list (`model_prices_and_context_window.json`) into the catalog."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from providers.catalog import INT_LIMIT, MILLION, PRICE_FIELDS, PRICE_LIMIT, PRICE_STEP
from providers.models import Lifecycle, ModelCard, Tier

# --------------------------------------------------------------------------- LiteLLM

# The LiteLLM `mode` values the gateway can serve, and what each means here.
LITELLM_MODES = {"chat": "chat", "completion": "chat", "responses": "chat", "embedding": "embeddings"}

# litellm_provider values that name the model's maker directly.
LITELLM_VENDORS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "openai",
    "anthropic": "anthropic",
    "vertex_ai-anthropic_models": "anthropic",
    "gemini": "google",
    "vertex_ai-language-models": "google",
    "vertex_ai-chat-models": "google",
    "vertex_ai-text-models": "google",
    "vertex_ai-embedding-models": "google",
    "mistral": "mistral",
    "codestral": "mistral",
    "text-completion-codestral": "mistral",
    "deepseek": "deepseek",
    "xai": "xai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "dashscope": "qwen",
    "meta_llama": "meta",
}

# For hosts that serve many makers' models, the maker is read from the model name.
VENDOR_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"claude"), "anthropic"),
    (re.compile(r"gemini|gemma|palm"), "google"),
    (re.compile(r"llama"), "meta"),
    (re.compile(r"mistral|mixtral|codestral|ministral|pixtral|magistral|devstral"), "mistral"),
    (re.compile(r"deepseek"), "deepseek"),
    (re.compile(r"qwen|qwq"), "qwen"),
    (re.compile(r"command|cohere|embed-(english|multilingual|v\d)"), "cohere"),
    (re.compile(r"grok"), "xai"),
    (re.compile(r"gpt|(^|/)o\d|text-embedding|davinci|babbage|chatgpt"), "openai"),
)

OPEN_WEIGHT = re.compile(r"llama|mixtral|gemma|qwen|qwq|deepseek|gpt-oss|phi-?\d|olmo|falcon|mistral-7b|mistral-nemo")
SELF_HOSTED_PROVIDERS = frozenset({"ollama", "ollama_chat", "huggingface", "vllm", "hosted_vllm", "lm_studio"})


class SkipEntry(Exception):
    """One price-list entry left out, with the reason."""


def per_million(value: Any) -> tuple[Decimal, bool]:
    """A per-token cost as an exact per-1M price; True when it had to be rounded to 6 places."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise SkipEntry(f"cost {value!r} is not a number")
    try:
        amount = Decimal(str(value)) * MILLION
    except InvalidOperation:
        raise SkipEntry(f"cost {value!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise SkipEntry(f"cost {value!r} is not a price")
    amount = amount.normalize()
    rounded = amount.as_tuple().exponent < -6
    if rounded:
        amount = amount.quantize(PRICE_STEP, rounding=ROUND_HALF_UP).normalize()
    if amount >= PRICE_LIMIT:
        raise SkipEntry("price too large")
    return amount, rounded


def _tokens(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float | Decimal):
        try:
            number = int(value)
        except (ValueError, OverflowError, InvalidOperation):
            return None
        if number != value:
            return None
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    else:
        return None
    return number if 0 < number <= INT_LIMIT else None


def litellm_vendor(name: str, provider: str) -> str:
    if provider in LITELLM_VENDORS:
        return LITELLM_VENDORS[provider]
    lowered = name.lower()
    for pattern, vendor in VENDOR_PATTERNS:
        if pattern.search(lowered):
            return vendor
    return provider or "unknown"


def litellm_tier(*, name: str, provider: str, output_price: Decimal, input_price: Decimal) -> str:
    """A heuristic: open families are open-weight; otherwise the list price says the tier."""
    if provider in SELF_HOSTED_PROVIDERS or OPEN_WEIGHT.search(name.lower()):
        return Tier.OPEN_WEIGHT.value
    if output_price >= 10 or input_price >= Decimal("2.5"):
        return Tier.FRONTIER.value
    if output_price >= Decimal("1.5") or input_price >= Decimal("0.5"):
        return Tier.MID.value
    return Tier.EDGE.value


def litellm_entry_convert(name: str, entry: Any, *, today: date) -> tuple[dict[str, Any], bool]:
    """One LiteLLM entry as card fields; raises SkipEntry with the reason to leave it out."""
    if not isinstance(entry, Mapping):
        raise SkipEntry("not an object")
    if len(name) > 200:
        raise SkipEntry("name longer than 200 characters")
    mode = entry.get("mode", "chat")
    kind = LITELLM_MODES.get(mode)
    if kind is None:
        raise SkipEntry(f"mode {mode} is not served by the gateway")
    if "input_cost_per_token" not in entry and "output_cost_per_token" not in entry:
        raise SkipEntry("no per-token price")
    provider = str(entry.get("litellm_provider") or "")
    input_price, r1 = per_million(entry.get("input_cost_per_token", 0))
    output_price, r2 = per_million(entry.get("output_cost_per_token", 0))
    if "cache_read_input_token_cost" in entry:
        cached_price, r3 = per_million(entry["cache_read_input_token_cost"])
    else:
        cached_price, r3 = input_price, False  # no discount is known: bill cached tokens in full
    if kind == "embeddings":
        capabilities = ["embeddings"]
    else:
        capabilities = ["chat"]
        if entry.get("supports_native_streaming", True) is not False:
            capabilities.append("streaming")
        if entry.get("supports_function_calling"):
            capabilities.append("tools")
        if entry.get("supports_vision"):
            capabilities.append("vision")
        if entry.get("supports_response_schema"):
            capabilities.append("json_mode")
    context = _tokens(entry.get("max_input_tokens")) or _tokens(entry.get("max_tokens")) or 128_000
    if kind == "embeddings":
        max_output = _tokens(entry.get("max_output_tokens")) or 0
    else:
        max_output = _tokens(entry.get("max_output_tokens")) or _tokens(entry.get("max_tokens")) or 4096
    lifecycle = Lifecycle.ACTIVE.value
    note = ""
    raw_date = entry.get("deprecation_date")
    if isinstance(raw_date, str):
        try:
            deprecated_on = date.fromisoformat(raw_date.strip())
        except ValueError:
            deprecated_on = None
        if deprecated_on is not None:
            note = f" Deprecation date {deprecated_on.isoformat()}."
            if deprecated_on <= today:
                lifecycle = Lifecycle.DEPRECATED.value
    fields = {
        "name": name,
        "display_name": name,
        "vendor": litellm_vendor(name, provider),
        "tier": litellm_tier(name=name, provider=provider, output_price=output_price, input_price=input_price),
        "context_window": context,
        "max_output_tokens": max_output,
        "input_price": input_price,
        "output_price": output_price,
        "cached_input_price": cached_price,
        "capabilities": sorted(set(capabilities)),
        "lifecycle": lifecycle,
        "description": f"Imported from the LiteLLM price list (provider {provider or 'unknown'}).{note}",
    }
    return fields, r1 or r2 or r3


@dataclass
class PriceList:
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    rounded: list[str] = field(default_factory=list)


def litellm_rows(
    data: Mapping[str, Any], *, modes: set[str], providers: set[str] | None = None, today: date | None = None
) -> PriceList:
    """Convert a LiteLLM `model_prices_and_context_window.json` document into card rows."""
    today = today or date.today()
    result = PriceList()
    for name, entry in data.items():
        if name == "sample_spec":
            result.skipped["sample_spec (the format's own description)"] += 1
            continue
        if isinstance(entry, Mapping):
            mode = entry.get("mode", "chat")
            if mode not in modes:
                result.skipped[f"mode {mode} not selected"] += 1
                continue
            provider = str(entry.get("litellm_provider") or "")
            if providers and provider not in providers and litellm_vendor(name, provider) not in providers:
                result.skipped["provider not selected"] += 1
                continue
        try:
            fields, rounded = litellm_entry_convert(str(name), entry, today=today)
        except SkipEntry as exc:
            result.skipped[str(exc)] += 1
            continue
        if rounded:
            result.rounded.append(str(name))
        result.rows.append(fields)
    return result


def import_policy(card: ModelCard, row: dict[str, Any]) -> dict[str, Any] | str:
    """What an import may change: all of an imported card, only the prices of a curated one."""
    if card.operator_priced:
        return "operator-priced model (the operator sets its price)"
    if card.source == "import":
        return {key: value for key, value in row.items() if key != "name"}
    return {key: row[key] for key in PRICE_FIELDS}
