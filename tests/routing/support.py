"""Building routing scenarios through the services, and talking to the gateway."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from providers import services as provider_services
from routing import services as routing_services
from routing.policy.document import policy_empty
from tests.conftest import FAST, gateway_sync, server_gateway

HELLO = [{"role": "user", "content": "hi"}]


def model_card(name: str, *, input_price: str = "1", output_price: str = "2", capabilities=None):
    card, _ = provider_services.model_card_upsert(
        name=name,
        vendor="test",
        input_price=Decimal(input_price),
        output_price=Decimal(output_price),
        capabilities=capabilities or ["chat", "streaming", "json_mode", "tools"],
    )
    return card


def sim_deployment(
    card,
    name: str,
    headers: dict[str, str] | None = None,
    *,
    upstream: str = "gpt-4o-mini",
    timeout: float = 10.0,
    weight: int = 1,
    kind: str = "openai",
    organization=None,
):
    urls = {"openai": "sim://openai/v1", "anthropic": "sim://anthropic"}
    provider = provider_services.provider_create(
        name=f"prov-{name}",
        kind=kind,
        base_url=urls[kind],
        secret="sim",
        extra_headers={**FAST, **(headers or {})},
        organization=organization,
    )
    return provider_services.deployment_create(
        model=card, provider=provider, name=name, upstream_model=upstream, timeout=timeout, weight=weight
    )


def provider_headers(deployment, headers: dict[str, str]) -> None:
    """Change what the simulator does for one deployment (its provider's x-sim-* headers)."""
    provider_services.provider_update(provider=deployment.provider, extra_headers={**FAST, **headers})
    gateway_sync()


def policy(org, owner, **sections: Any):
    """Make `sections` (routes, rules, matrix, settings...) the organization's live policy."""
    document = policy_empty()
    for key, value in sections.items():
        if key == "settings":
            document["settings"].update(value)
        else:
            document[key] = value
    version = routing_services.policy_propose(organization=org, actor=owner, document=document, summary="test")
    gateway_sync()
    return version


def reset_state(*deployments) -> None:
    server_gateway().state.reset([d.id for d in deployments] if deployments else None)


@contextmanager
def routing_clock() -> Iterator:
    """Stop the routing state's clock (the gateway's too: it shares the state) so a
    test moves it past ejections with `advance(timedelta(...))` instead of sleeping."""
    with server_gateway().state.clock.frozen(datetime.now(UTC)) as clock:
        yield clock


def outcomes_written() -> None:
    """Wait until the outcomes queued on the server's gateway are in the shared state."""
    gateway = server_gateway()
    gateway.call_soon(gateway.state.written, timeout=5)


def chat(
    demo, model: str, *, headers: dict[str, str] | None = None, timeout: float = 20, **body: Any
) -> httpx.Response:
    payload = {"model": model, "messages": body.pop("messages", HELLO), **body}
    return httpx.post(
        demo.base_url + "/chat/completions",
        json=payload,
        headers={"authorization": f"Bearer {demo.secret}", **(headers or {})},
        timeout=timeout,
    )


def spread(demo, model: str, n: int, **kwargs: Any) -> Counter:
    """Which deployment answered each of n requests."""
    counts: Counter = Counter()
    for _ in range(n):
        response = chat(demo, model, **kwargs)
        assert response.status_code == 200, response.text
        counts[response.headers["x-gatehouse-deployment"]] += 1
    return counts
