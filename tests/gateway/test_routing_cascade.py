"""The cost cascade over real HTTP: the cheap layer's invalid JSON escalates, older
turns are summarized on the way up, and the record bills every layer."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from tests.conftest import usage_wait
from tests.routing.support import chat, model_card, policy, reset_state, sim_deployment

CONVERSATION = [
    {"role": "system", "content": "You extract purchase orders."},
    {"role": "user", "content": "We need 12 laptops for the Berlin office."},
    {"role": "assistant", "content": "Noted: 12 laptops, Berlin."},
    {"role": "user", "content": "Also 3 docking stations."},
    {"role": "assistant", "content": "Noted: 3 docking stations."},
    {"role": "user", "content": "Give me the order as JSON."},
]


@pytest.fixture
def cascade(demo):
    cheap = model_card("casc-lite", input_price="0.1", output_price="0.4")
    mid = model_card("casc-sonnet", input_price="3", output_price="15")
    top = model_card("casc-opus", input_price="15", output_price="75")
    summarizer = model_card("casc-summary", input_price="0.05", output_price="0.2")
    deployments = [
        sim_deployment(cheap, "casc-lite@a", {"x-sim-invalid-json-rate": "1"}),
        sim_deployment(mid, "casc-sonnet@a"),
        sim_deployment(top, "casc-opus@a"),
        sim_deployment(summarizer, "casc-summary@a"),
    ]
    reset_state(*deployments)
    policy(
        demo.org,
        demo.owner,
        routes=[
            {
                "name": "procurement-agent",
                "kind": "cascade",
                "layers": [{"model": "casc-lite"}, {"model": "casc-sonnet"}, {"model": "casc-opus"}],
                "compress": {"model": "casc-summary"},
            }
        ],
    )
    return deployments


def test_invalid_json_on_the_cheap_layer_escalates_and_bills_every_layer(demo, cascade):
    response = chat(demo, "procurement-agent", messages=CONVERSATION, response_format={"type": "json_object"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert isinstance(json.loads(answer["choices"][0]["message"]["content"]), dict)
    assert response.headers["x-gatehouse-cascade-layer"] == "2"
    assert response.headers["x-gatehouse-cascade-accepted"] == "true"
    costs = response.headers["x-gatehouse-cascade-costs"]
    assert costs.startswith("casc-lite=") and ";casc-sonnet=" in costs and "compress:casc-summary=" in costs

    record = usage_wait(response.headers["x-request-id"])
    cascade_meta = record.metadata["routing"]["cascade"]
    layers = cascade_meta["layers"]
    assert [(layer["name"], layer["accepted"]) for layer in layers] == [("casc-lite", False), ("casc-sonnet", True)]
    assert layers[0]["reason"] == "invalid_json"
    assert cascade_meta["answered_by"] == 2
    compression = cascade_meta["compression"]
    assert compression["model"] == "casc-summary" and compression["turns"] == 4
    total = sum(Decimal(layer["cost"]) for layer in layers) + Decimal(compression["cost"])
    assert record.cost == total.quantize(Decimal("1e-10")) and record.cost > 0
    assert Decimal(response.headers["x-gatehouse-cost"]) == total
    assert record.model_used == "casc-sonnet" and record.model_requested == "procurement-agent"


def test_a_cascade_record_can_be_recomputed_from_its_own_calls(demo, cascade):
    """Each call the record lists carries its tokens and the prices that applied: its
    cost recomputes exactly, and the calls add up to the record's cost."""
    from budgets.pricing import cost_of

    response = chat(demo, "procurement-agent", messages=CONVERSATION, response_format={"type": "json_object"})
    assert response.status_code == 200, response.text
    record = usage_wait(response.headers["x-request-id"])
    calls = record.metadata["routing"]["calls"]
    assert [call["model"] for call in calls] == ["casc-lite", "casc-summary", "casc-sonnet"]
    total = Decimal(0)
    for call in calls:
        recomputed = cost_of(
            input_tokens=call["input_tokens"],
            output_tokens=call["output_tokens"],
            cached_tokens=call["cached_tokens"],
            input_price=Decimal(call["input_price"]),
            output_price=Decimal(call["output_price"]),
            cached_input_price=Decimal(call["cached_input_price"]),
        ).total
        assert recomputed == Decimal(call["cost"])
        total += recomputed
    assert record.cost == total
    assert record.input_tokens == sum(call["input_tokens"] for call in calls)
    assert record.output_tokens == sum(call["output_tokens"] for call in calls)


def test_an_accepted_cheap_answer_stops_the_cascade(demo, cascade):
    response = chat(demo, "procurement-agent", messages=[{"role": "user", "content": "Say hello"}])
    assert response.status_code == 200
    assert response.headers["x-gatehouse-cascade-layer"] == "1"
    record = usage_wait(response.headers["x-request-id"])
    assert record.model_used == "casc-lite"
    assert len(record.metadata["routing"]["cascade"]["layers"]) == 1


def test_json_schema_validator_escalates_a_non_conforming_answer(demo, cascade):
    schema = {
        "type": "object",
        "properties": {"item": {"type": "string"}, "quantity": {"type": "integer"}},
        "required": ["item", "quantity"],
        "additionalProperties": False,
    }
    response = chat(
        demo,
        "procurement-agent",
        messages=CONVERSATION,
        response_format={"type": "json_schema", "json_schema": {"name": "order", "schema": schema}},
    )
    assert response.status_code == 200
    assert response.headers["x-gatehouse-cascade-layer"] == "2"
    content = json.loads(response.json()["choices"][0]["message"]["content"])
    assert set(content) == {"item", "quantity"}


def test_streaming_cascade_streams_the_accepted_answer(demo, cascade):
    body = {
        "model": "procurement-agent",
        "messages": CONVERSATION,
        "stream": True,
        "response_format": {"type": "json_object"},
        "stream_options": {"include_usage": True},
    }
    with httpx.stream(
        "POST",
        demo.base_url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {demo.secret}"},
        timeout=20,
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-gatehouse-cascade-layer"] == "2"
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert isinstance(json.loads(text), dict)
    assert chunks[-1]["usage"]["completion_tokens"] > 0
