"""The official `openai` SDK works unchanged against Gatehouse, over real HTTP,
through each provider adapter to the simulator."""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest

from budgets.pricing import cost_of
from tests.conftest import usage_wait

CHAT_MODELS = ["gpt-4o-mini", "claude-sonnet-4-6", "gemini-3.1-pro", "gpt-5.5"]


@pytest.fixture
def client(demo):
    return openai.OpenAI(base_url=demo.base_url, api_key=demo.secret, max_retries=0, timeout=20)


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_chat_completion_through_each_adapter_is_priced_and_recorded(client, demo, model):
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
        max_tokens=50,
        user="end-user-1",
        metadata={"ticket": "T-1"},
        extra_headers={"x-gatehouse-tags": "alpha,beta", "x-gatehouse-workflow": "support-triage"},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in {"stop", "length"}
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0

    request_id = raw.headers["x-request-id"]
    assert raw.headers["x-gatehouse-model"] == model
    assert raw.headers["x-gatehouse-deployment"].startswith(model + "@")
    record = usage_wait(request_id)
    assert record.status_code == 200
    assert record.key_id == demo.key.id and record.organization_id == demo.org.id and record.team_id == demo.team.id
    assert record.model_requested == record.model_used == model
    assert record.input_tokens == completion.usage.prompt_tokens
    assert record.output_tokens == completion.usage.completion_tokens
    assert not record.tokens_estimated
    expected = cost_of(
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cached_tokens=record.cached_tokens,
        input_price=record.input_price,
        output_price=record.output_price,
        cached_input_price=record.cached_input_price,
    )
    assert record.cost == expected.total.quantize(Decimal("1e-10"))
    assert record.cost > 0
    assert Decimal(raw.headers["x-gatehouse-cost"]) == expected.total
    assert record.tags == ["alpha", "beta"] and record.workflow == "support-triage"
    assert record.end_user == "end-user-1" and record.metadata == {"ticket": "T-1"}
    assert record.latency_ms > 0


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_streaming_reassembles_and_reports_usage_when_asked(client, model):
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Tell me a story"}],
        max_tokens=40,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(text)
    assert finish in {"stop", "length"}
    assert usage is not None and usage.completion_tokens > 0


def test_stream_without_include_usage_sends_no_usage_chunk_and_ends_with_done(demo):
    import httpx

    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream(
        "POST", demo.base_url + "/chat/completions", json=body, headers={"authorization": f"Bearer {demo.secret}"}
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        request_id = response.headers["x-request-id"]
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert all(chunk.get("usage") is None for chunk in chunks)
    record = usage_wait(request_id)
    assert record.stream and record.status_code == 200 and record.output_tokens > 0
    assert record.ttft_ms is not None and record.ttft_ms <= record.latency_ms


def test_tool_calls_and_json_mode_map_through_adapters(client):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    for model in ("claude-sonnet-4-6", "gemini-3.1-pro", "gpt-4o-mini"):
        completion = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools
        )
        call = completion.choices[0].message.tool_calls[0]
        assert completion.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "get_weather"
        assert "city" in json.loads(call.function.arguments)
        answer = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Give me JSON"}],
            response_format={"type": "json_object"},
        )
        assert isinstance(json.loads(answer.choices[0].message.content), dict)


def test_embeddings_and_models_list(client, demo):
    result = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    assert len(result.data) == 2 and len(result.data[0].embedding) > 10
    assert result.usage.prompt_tokens > 0
    names = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "claude-sonnet-4-6", "text-embedding-3-small"} <= names
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"


def test_models_list_shows_only_what_the_key_may_use(demo):
    from console.services import api_key_create

    issued = api_key_create(organization=demo.org, name="narrow", allowed_models=["gpt-4o-mini"])
    narrow = openai.OpenAI(base_url=demo.base_url, api_key=issued.secret, max_retries=0)
    assert [m.id for m in narrow.models.list()] == ["gpt-4o-mini"]
    with pytest.raises(openai.PermissionDeniedError) as excinfo:
        narrow.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}])
    assert excinfo.value.code == "model_not_allowed"
    with pytest.raises(openai.NotFoundError):
        narrow.models.retrieve("gpt-5.5")


def test_sdk_exception_classes_match_gateway_errors(client, demo):
    bad_key = openai.OpenAI(base_url=demo.base_url, api_key="sk-gh-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.NotFoundError) as excinfo:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert excinfo.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert excinfo.value.param == "messages"
