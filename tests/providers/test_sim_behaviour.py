"""Simulator behaviour: timing profiles, control overrides, JSON breakage, disconnect clean-up."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

from providers.adapters import get_adapter
from providers.simulator.knobs import EDGE, FRONTIER, MID, KnobRegistry, profile_for

from .conftest import SimServer
from .provider_testkit import make_target

USER = [{"role": "user", "content": "Hello"}]
OPENAI_AUTH = {"authorization": "Bearer sk-test"}


@pytest.mark.parametrize(
    ("model", "profile"),
    [
        ("gpt-5.5", FRONTIER),
        ("claude-opus-4-1", FRONTIER),
        ("gemini-3.1-pro-preview", FRONTIER),
        ("claude-sonnet-4-5", MID),
        ("gpt-5.4-mini", MID),
        ("gemini-2.5-flash", MID),
        ("gpt-4o-mini", EDGE),
        ("gemini-2.5-flash-lite", EDGE),
        ("llama-3.1-8b-instruct", EDGE),
        ("qwen2.5-7b", EDGE),
        ("something-unknown", MID),
    ],
)
def test_profiles(model: str, profile: Any) -> None:
    assert profile_for(model).tier == profile.tier


async def first_content_after(http: httpx.AsyncClient, sim_url: str, model: str, scale: str) -> float:
    target = make_target(sim_url, "openai", model, headers=(("x-sim-latency-scale", scale),))
    started = time.perf_counter()
    stream = await get_adapter("openai").open_stream(http, target, {"model": model, "messages": USER})
    try:
        async for chunk in stream:
            if chunk["choices"][0]["delta"].get("content"):
                return time.perf_counter() - started
    finally:
        await stream.aclose()
    raise AssertionError("no content arrived")


@pytest.mark.asyncio
async def test_latency_scale_shapes_time_to_first_token(sim_url: str, http: httpx.AsyncClient) -> None:
    frontier = await first_content_after(http, sim_url, "gpt-5.5", "0.2")
    edge = await first_content_after(http, sim_url, "gpt-4o-mini", "0.2")
    instant = await first_content_after(http, sim_url, "gpt-5.5", "0")
    assert 0.1 <= frontier < 1.0
    assert edge < frontier
    assert instant < 0.1


@pytest.mark.asyncio
async def test_plain_answers_wait_for_generation(sim_url: str, http: httpx.AsyncClient) -> None:
    target = make_target(
        sim_url, "openai", "gpt-4o-mini", headers=(("x-sim-latency-scale", "0.2"), ("x-sim-output-tokens", "100"))
    )
    started = time.perf_counter()
    result = await get_adapter("openai").chat(http, target, {"model": "gpt-4o-mini", "messages": USER})
    elapsed = time.perf_counter() - started
    # edge: 0.2 * (0.10..0.15 s + 100 tokens / 150..250 tok/s) = 0.1..0.16 s
    assert 0.09 <= elapsed < 1.0
    assert 95 <= result.usage.completion_tokens <= 100


@pytest.mark.asyncio
async def test_health_and_bad_knobs(sim_url: str, http: httpx.AsyncClient) -> None:
    health = await http.get(f"{sim_url}/_health")
    assert health.json() == {"status": "ok"}
    bad = await http.post(
        f"{sim_url}/openai/v1/chat/completions",
        json={"model": "m", "messages": USER},
        headers={**OPENAI_AUTH, "x-sim-fault": "teapot"},
    )
    assert bad.status_code == 400 and "x-sim-fault" in bad.json()["error"]["message"]


def control_auth() -> dict[str, str]:
    return {"authorization": f"Bearer {settings.GATEHOUSE['SIMULATOR_CONTROL_TOKEN']}"}


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_control_refuses_without_the_admin_token(sim_url: str, http: httpx.AsyncClient, method: str) -> None:
    body = {"model": "*", "fault": "503"} if method == "POST" else None
    missing = await http.request(method, f"{sim_url}/_control", json=body)
    assert missing.status_code == 401 and "control token" in missing.json()["error"]["message"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = await http.request(method, f"{sim_url}/_control", json=body, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 403
    other_scheme = await http.request(
        method,
        f"{sim_url}/_control",
        json=body,
        headers={"authorization": f"Basic {control_auth()['authorization'][7:]}"},
    )
    assert other_scheme.status_code == 401
    listed = await http.get(f"{sim_url}/_control", headers=control_auth())
    assert listed.status_code == 200 and listed.json()["overrides"] == {}  # nothing was injected
    ok = await http.post(
        f"{sim_url}/openai/v1/chat/completions",
        json={"model": "m", "messages": USER},
        headers={**OPENAI_AUTH, "x-sim-latency-scale": "0"},
    )
    assert ok.status_code == 200


def test_simulator_needs_a_control_token() -> None:
    from providers.simulator.app import SimulatorApp

    with pytest.raises(ValueError, match="control token"):
        SimulatorApp(control_token="")


@pytest.mark.asyncio
async def test_control_overrides_per_model(sim_url: str, http: httpx.AsyncClient) -> None:
    url = f"{sim_url}/openai/v1/chat/completions"
    fast = {**OPENAI_AUTH, "x-sim-latency-scale": "0"}
    admin = control_auth()
    try:
        set_fault = await http.post(f"{sim_url}/_control", json={"model": "ctl-model", "fault": "503"}, headers=admin)
        assert set_fault.status_code == 200 and set_fault.json()["override"] == {"fault": "503"}
        hit = await http.post(url, json={"model": "ctl-model", "messages": USER}, headers=fast)
        assert hit.status_code == 503
        other = await http.post(url, json={"model": "other-model", "messages": USER}, headers=fast)
        assert other.status_code == 200
        header_wins = await http.post(
            url, json={"model": "ctl-model", "messages": USER}, headers={**fast, "x-sim-fault": "none"}
        )
        assert header_wins.status_code == 200
        everyone = await http.post(
            f"{sim_url}/_control", json={"model": "*", "fault": "429", "fault_rate": 1}, headers=admin
        )
        assert everyone.status_code == 200
        assert (await http.post(url, json={"model": "other-model", "messages": USER}, headers=fast)).status_code == 429
        listed = await http.get(f"{sim_url}/_control", headers=admin)
        assert set(listed.json()["overrides"]) == {"ctl-model", "*"}
        refused = await http.post(f"{sim_url}/_control", json={"model": "x", "latency_scale": -1}, headers=admin)
        assert refused.status_code == 400
    finally:
        cleared = await http.delete(f"{sim_url}/_control", headers=admin)
    assert cleared.json()["overrides"] == {}
    assert (await http.post(url, json={"model": "ctl-model", "messages": USER}, headers=fast)).status_code == 200


@pytest.mark.asyncio
async def test_invalid_json_rate(sim_url: str, http: httpx.AsyncClient) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Answer in json"}],
        "response_format": {"type": "json_object"},
    }
    headers = {**OPENAI_AUTH, "x-sim-latency-scale": "0", "x-sim-invalid-json-rate": "1"}
    response = await http.post(f"{sim_url}/openai/v1/chat/completions", json=body, headers=headers)
    content = response.json()["choices"][0]["message"]["content"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


async def settle(server: SimServer, baseline: int, seconds: float = 3.0) -> int:
    """Wait until the server's task count is back to the baseline (or time runs out)."""
    deadline = time.monotonic() + seconds
    count = server.task_count()
    while count > baseline and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        count = server.task_count()
    return count


@pytest.mark.asyncio
async def test_disconnects_leave_no_tasks(sim_server: SimServer) -> None:
    sim_url = sim_server.url
    await asyncio.sleep(0.2)
    baseline = sim_server.task_count()
    url = f"{sim_url}/openai/v1/chat/completions"
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        # Mid-stream: a long, slow answer abandoned after the first content chunk.
        headers = {**OPENAI_AUTH, "x-sim-latency-scale": "1", "x-sim-output-tokens": "3000"}
        body = {"model": "gpt-4o-mini", "messages": USER, "stream": True}
        async with client.stream("POST", url, json=body, headers=headers) as response:
            async for line in response.aiter_lines():
                if '"content":"S' in line:
                    break
            assert sim_server.task_count() > baseline
        # During the time to first token, by a client that gives up first.
        with pytest.raises(httpx.TimeoutException):
            await client.post(
                url,
                json={"model": "gpt-5.5", "messages": USER},
                headers={**OPENAI_AUTH, "x-sim-latency-scale": "1"},
                timeout=0.2,
            )
        # A hung request (the timeout fault) abandoned by its client.
        with pytest.raises(httpx.TimeoutException):
            await client.post(
                url,
                json={"model": "gpt-4o-mini", "messages": USER},
                headers={**OPENAI_AUTH, "x-sim-fault": "timeout"},
                timeout=0.2,
            )
    assert await settle(sim_server, baseline) <= baseline


def _sim_defaults(settings, **values: str) -> None:
    defaults = {"latency_scale": "1.0", "fault": "", "fault_rate": "1.0", "invalid_json_rate": "0", **values}
    settings.GATEHOUSE = {**settings.GATEHOUSE, "SIMULATOR_DEFAULTS": defaults}


def test_knob_layers(settings) -> None:
    _sim_defaults(settings, fault="429", fault_rate="0.5", latency_scale="0.25")
    registry = KnobRegistry()
    knobs = registry.resolve("m", {})
    assert (knobs.fault, knobs.fault_rate, knobs.latency_scale) == ("429", 0.5, 0.25)
    registry.set_override("*", {"latency_scale": 3})
    registry.set_override("m", {"latency_scale": 2, "invalid_json_rate": 0.1})
    assert registry.resolve("m", {}).latency_scale == 2
    assert registry.resolve("other", {}).latency_scale == 3
    knobs = registry.resolve("m", {b"x-sim-latency-scale": b"0", b"x-sim-fault": b"timeout"})
    assert (knobs.latency_scale, knobs.fault, knobs.fault_rate, knobs.invalid_json_rate) == (0, "timeout", 1.0, 0.1)
    _sim_defaults(settings, fault="bogus")
    assert KnobRegistry().defaults.fault is None  # importing never fails over a test knob
