"""Deadlines over real HTTP, with the simulator hanging, withholding the first token
or stalling mid-stream: each ends in about its configured time with a clear
OpenAI-shaped error and a usage record that says so. Bounds are generous (the
point is seconds instead of minutes), never timing micro-assertions."""

from __future__ import annotations

import time

import httpx
import orjson

from providers import services as provider_services
from tests.conftest import gateway_sync, usage_wait
from tests.routing.support import HELLO, chat, model_card, policy, reset_state, sim_deployment


def stream(demo, model: str) -> tuple[int, list[str], str]:
    """(status, SSE data lines, request id) of a streamed chat request."""
    body = {"model": model, "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST",
        demo.base_url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {demo.secret}"},
        timeout=20,
    ) as response:
        lines = [line for line in response.iter_lines() if line]
        return response.status_code, lines, response.headers["x-request-id"]


def timeouts(deployment, **fields) -> None:
    provider_services.deployment_update(deployment=deployment, **fields)
    gateway_sync()


def test_a_hanging_upstream_ends_at_the_route_deadline(demo):
    card = model_card("hang-model")
    hanging = sim_deployment(card, "hang@a", {"x-sim-fault": "timeout"}, timeout=30)
    reset_state(hanging)
    policy(demo.org, demo.owner, routes=[{"name": "hang", "targets": [{"deployment": hanging.name}], "deadline": 0.3}])
    started = time.monotonic()
    response = chat(demo, "hang")
    assert time.monotonic() - started < 5
    assert response.status_code == 504, response.text
    error = response.json()["error"]
    assert error["code"] == "request_deadline_exceeded" and "0.3s" in error["message"]
    record = usage_wait(response.headers["x-request-id"])
    assert record.status_code == 504 and record.error_code == "request_deadline_exceeded"
    assert record.metadata["routing"]["deadline_exceeded"] == 0.3
    assert record.metadata["attempt_trail"][-1]["error"] == "request_deadline_exceeded"


def test_the_deployment_timeout_bounds_each_attempt(demo):
    card = model_card("slow-model")
    hanging = sim_deployment(card, "slow@a", {"x-sim-fault": "timeout"}, timeout=0.2)
    reset_state(hanging)
    gateway_sync()
    started = time.monotonic()
    response = chat(demo, "slow-model")
    assert time.monotonic() - started < 5
    assert response.status_code == 504 and response.json()["error"]["code"] == "upstream_timeout"
    assert response.headers["x-gatehouse-attempts"] == "3"


def test_the_retry_budget_spans_attempts_and_fallbacks(demo):
    first = sim_deployment(model_card("budget-a"), "budget@a", {"x-sim-fault": "500"})
    second = sim_deployment(model_card("budget-b"), "budget@b", {"x-sim-fault": "500"})
    third = sim_deployment(model_card("budget-c"), "budget@c")
    reset_state(first, second, third)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "budgeted",
                "targets": [{"deployment": first.name}],
                "fallbacks": [{"when": "any", "route": "budget-b"}],
                "max_attempts_total": 4,
                "ejection": {"max_percent": 0},
            },
            {"name": "budget-b", "targets": [{"deployment": second.name}], "fallbacks": [{"route": "budget-c"}]},
        ],
    )
    response = chat(demo, "budgeted")
    # 3 attempts on the first route, 1 left for the fallback, none for the rescue route behind it.
    assert response.status_code == 502, response.text
    assert response.headers["x-gatehouse-attempts"] == "4"
    record = usage_wait(response.headers["x-request-id"])
    assert record.metadata["routing"]["retry_budget_exhausted"] == 4
    assert [step["deployment"] for step in record.metadata["attempt_trail"] if "deployment" in step] == [
        first.name
    ] * 3 + [second.name]


def test_a_stream_without_a_first_token_gives_up_at_the_ttft_timeout(demo):
    card = model_card("mute-model")
    mute = sim_deployment(card, "mute@a", {"x-sim-fault": "slow_first_token"}, timeout=30)
    reset_state(mute)
    timeouts(mute, ttft_timeout=0.3)
    started = time.monotonic()
    status, lines, request_id = stream(demo, "mute-model")
    assert time.monotonic() - started < 5
    assert status == 504
    assert orjson.loads(lines[0])["error"]["code"] == "ttft_timeout"
    record = usage_wait(request_id)
    assert record.error_code == "ttft_timeout" and record.metadata["attempt_trail"][0]["error"] == "ttft_timeout"
    assert len(record.metadata["attempt_trail"]) == 3  # each attempt gave up at its TTFT timeout


def test_a_ttft_timeout_moves_on_to_the_next_deployment(demo):
    card = model_card("mute-pair")
    mute = sim_deployment(card, "mute-pair@a", {"x-sim-fault": "slow_first_token"}, timeout=30)
    fine = sim_deployment(card, "mute-pair@b")
    reset_state(mute, fine)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "mute-pair",
                "targets": [{"deployment": mute.name, "weight": 10_000}, {"deployment": fine.name}],
                "ttft_timeout": 0.3,
            }
        ],
    )
    status, lines, request_id = stream(demo, "mute-pair")
    assert status == 200 and lines[-1] == "data: [DONE]"
    trail = usage_wait(request_id).metadata["attempt_trail"]
    assert trail[0] == {**trail[0], "deployment": mute.name, "error": "ttft_timeout", "status": 504}


def test_a_stream_that_stalls_ends_with_an_idle_timeout_event(demo):
    card = model_card("stall-model")
    stalling = sim_deployment(card, "stall@a", {"x-sim-fault": "stall"}, timeout=30)
    reset_state(stalling)
    timeouts(stalling, stream_idle_timeout=0.3)
    started = time.monotonic()
    status, lines, request_id = stream(demo, "stall-model")
    assert time.monotonic() - started < 5
    assert status == 200
    assert '"chat.completion.chunk"' in lines[0]
    error = orjson.loads(lines[-1].removeprefix("data: "))["error"]
    assert error["code"] == "stream_idle_timeout" and "0.3s" in error["message"]
    record = usage_wait(request_id)
    assert record.status_code == 504 and record.error_code == "stream_idle_timeout"


def test_the_deployment_timeout_bounds_a_streams_first_token_and_its_gaps(demo):
    """The transport arms no read timer per chunk; the deployment's own `timeout` still
    bounds every wait of a stream, through its TTFT and idle timers."""
    card = model_card("tight-mute")
    mute = sim_deployment(card, "tight-mute@a", {"x-sim-fault": "slow_first_token"}, timeout=0.3)
    stalling = sim_deployment(model_card("tight-stall"), "tight-stall@a", {"x-sim-fault": "stall"}, timeout=0.3)
    reset_state(mute, stalling)
    gateway_sync()

    started = time.monotonic()
    status, lines, request_id = stream(demo, "tight-mute")
    assert time.monotonic() - started < 5
    assert status == 504 and orjson.loads(lines[0])["error"]["code"] == "ttft_timeout"
    assert usage_wait(request_id).error_code == "ttft_timeout"

    started = time.monotonic()
    status, lines, request_id = stream(demo, "tight-stall")
    assert time.monotonic() - started < 5
    assert status == 200 and '"chat.completion.chunk"' in lines[0]
    error = orjson.loads(lines[-1].removeprefix("data: "))["error"]
    assert error["code"] == "stream_idle_timeout" and "0.3s" in error["message"]
    assert usage_wait(request_id).error_code == "stream_idle_timeout"
