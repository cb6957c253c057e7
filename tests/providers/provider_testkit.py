"""Shared helpers for the provider tests."""

from __future__ import annotations

from providers.adapters.base import Target

FAST = (("x-sim-latency-scale", "0"),)


def make_target(
    sim_url: str,
    kind: str,
    model: str,
    *,
    headers: tuple[tuple[str, str], ...] = FAST,
    timeout: float = 10.0,
    api_key: str = "sk-test",
) -> Target:
    """A Target pointing at the simulator's surface for a provider kind."""
    base = {
        "openai": f"{sim_url}/openai/v1",
        "azure_openai": f"{sim_url}/azure",
        "anthropic": f"{sim_url}/anthropic",
        "gemini": f"{sim_url}/gemini/v1beta",
    }[kind]
    return Target(
        provider_kind=kind,
        base_url=base,
        api_key=api_key,
        upstream_model=model,
        timeout=timeout,
        extra_headers=headers,
    )


MODELS = {
    "openai": "gpt-4o-mini",
    "azure_openai": "gpt-4o-prod",
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
}
CHAT_KINDS = ("openai", "azure_openai", "anthropic", "gemini")
EMBEDDING_MODELS = {
    "openai": "text-embedding-3-small",
    "azure_openai": "embeddings-prod",
    "gemini": "text-embedding-004",
}
