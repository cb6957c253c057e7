"""Bad input and upstream trouble: OpenAI-shaped errors with the right status,
never a 500 or a hang, and a usage record for every authenticated request."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import openai
import pytest
from django.utils import timezone

from console.services import api_key_create, api_key_revoke
from providers import services as provider_services
from providers.models import ModelCard
from tests.conftest import FAST, gateway_sync, usage_wait


def post(demo, body=None, *, content=None, key=None, path="/chat/completions", headers=None, timeout=15):
    return httpx.post(
        demo.base_url + path,
        json=body if content is None else None,
        content=content,
        headers={
            "authorization": f"Bearer {key or demo.secret}",
            "content-type": "application/json",
            **(headers or {}),
        },
        timeout=timeout,
    )


def assert_openai_error(response, status: int, *, code=None, param=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    assert response.headers["x-request-id"].startswith("req_")
    return error


HELLO = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("content", "code", "param"),
    [
        (b"{not json", "invalid_json", None),
        (b"[1, 2]", "invalid_json", None),
        (b"", "invalid_json", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "missing_required_parameter", "model"),
        (b'{"model": "gpt-4o-mini"}', "missing_required_parameter", "messages"),
        (b'{"model": 42, "messages": []}', None, "model"),
        (b'{"model": "gpt-4o-mini", "messages": "hi"}', None, "messages"),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "wizard", "content": "x"}]}', "invalid_value", None),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            None,
            "temperature",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
            None,
            "max_tokens",
        ),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', None, "stream"),
    ],
)
def test_malformed_requests_get_400_and_are_recorded(demo, content, code, param):
    response = post(demo, content=content)
    assert_openai_error(response, 400, code=code, param=param)
    record = usage_wait(response.headers["x-request-id"])
    assert record.status_code == 400 and record.error_type == "invalid_request_error"
    assert record.key_id == demo.key.id and record.cost == 0


def test_body_too_large_is_413_and_recorded(demo, settings):
    limit = settings.GATEHOUSE["MAX_BODY_BYTES"]
    big = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * (limit + 10)}]}
    response = post(demo, big)
    assert_openai_error(response, 413, code="request_too_large")
    assert usage_wait(response.headers["x-request-id"]).status_code == 413


def test_missing_bad_revoked_and_expired_keys_get_401(demo):
    response = httpx.post(demo.base_url + "/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO})
    assert_openai_error(response, 401, code="missing_api_key")
    assert_openai_error(post(demo, {"model": "gpt-4o-mini", "messages": HELLO}, key="sk-gh-wrong"), 401)

    expiring = api_key_create(organization=demo.org, name="short", expires_at=timezone.now() + timedelta(seconds=1))
    assert post(demo, {"model": "gpt-4o-mini", "messages": HELLO}, key=expiring.secret).status_code == 200
    time.sleep(1.1)
    assert_openai_error(
        post(demo, {"model": "gpt-4o-mini", "messages": HELLO}, key=expiring.secret), 401, code="expired_api_key"
    )


def test_revocation_takes_effect_within_a_second(demo):
    body = {"model": "gpt-4o-mini", "messages": HELLO}
    assert post(demo, body).status_code == 200  # the key is now cached by the gateway
    api_key_revoke(key=demo.key)
    revoked_at = time.monotonic()
    while True:
        response = post(demo, body)
        if response.status_code == 401:
            break
        assert time.monotonic() - revoked_at < 1.0, "the revoked key still worked after a second"
        time.sleep(0.05)
    assert_openai_error(response, 401, code="revoked_api_key")


def test_unknown_path_and_wrong_method(demo):
    response = httpx.get(demo.base_url + "/nothing-here")
    assert_openai_error(response, 404, code="unknown_url")
    response = httpx.get(demo.base_url + "/chat/completions", headers={"authorization": f"Bearer {demo.secret}"})
    assert_openai_error(response, 405)


def faulty_model(demo, name: str, headers: dict[str, str], *, timeout: float = 5.0, base_url: str = "sim://openai/v1"):
    provider = provider_services.provider_create(
        name=f"sim-{name}", kind="openai", base_url=base_url, secret="x", extra_headers={**FAST, **headers}
    )
    card, _ = provider_services.model_card_upsert(
        name=name, vendor="test", input_price="1", output_price="2", capabilities=["chat", "streaming"]
    )
    provider_services.deployment_create(model=card, provider=provider, name=f"{name}@a", timeout=timeout)
    gateway_sync()
    return card


@pytest.mark.parametrize(
    ("fault", "status", "sdk_error"),
    [
        ("429", 429, openai.RateLimitError),
        ("500", 502, openai.InternalServerError),
        ("503", 503, openai.InternalServerError),
        ("malformed", 502, openai.InternalServerError),
        ("401", 502, openai.InternalServerError),
        ("400", 400, openai.BadRequestError),
    ],
)
def test_upstream_failures_map_to_openai_errors(demo, fault, status, sdk_error):
    faulty_model(demo, f"faulty-{fault}", {"x-sim-fault": fault})
    response = post(demo, {"model": f"faulty-{fault}", "messages": HELLO})
    error = assert_openai_error(response, status)
    assert error["type"] != "server_error"
    record = usage_wait(response.headers["x-request-id"])
    assert record.status_code == status and record.attempts >= 1
    assert record.deployment_name == f"faulty-{fault}@a"
    client = openai.OpenAI(base_url=demo.base_url, api_key=demo.secret, max_retries=0)
    with pytest.raises(sdk_error):
        client.chat.completions.create(model=f"faulty-{fault}", messages=HELLO)


def test_upstream_timeout_is_504_without_hanging(demo):
    faulty_model(demo, "slowpoke", {"x-sim-fault": "timeout"}, timeout=0.5)
    started = time.monotonic()
    response = post(demo, {"model": "slowpoke", "messages": HELLO})
    assert time.monotonic() - started < 5
    assert_openai_error(response, 504)
    with pytest.raises(openai.APIStatusError) as excinfo:
        openai.OpenAI(base_url=demo.base_url, api_key=demo.secret, max_retries=0).chat.completions.create(
            model="slowpoke", messages=HELLO
        )
    assert excinfo.value.status_code == 504


def test_unreachable_upstream_is_502(demo):
    from tests.conftest import free_port

    faulty_model(demo, "nowhere", {}, base_url=f"http://127.0.0.1:{free_port()}/v1")
    response = post(demo, {"model": "nowhere", "messages": HELLO})
    error = assert_openai_error(response, 502)
    assert error["code"] == "upstream_unreachable"


def test_retryable_failure_moves_to_the_next_deployment(demo):
    card = faulty_model(demo, "half-broken", {"x-sim-fault": "503"})
    healthy = provider_services.provider_create(
        name="sim-healthy", kind="openai", base_url="sim://openai/v1", secret="x", extra_headers=FAST
    )
    provider_services.deployment_create(model=card, provider=healthy, name="half-broken@b")
    gateway_sync()
    attempts = []
    for _ in range(12):
        response = post(demo, {"model": "half-broken", "messages": HELLO})
        assert response.status_code == 200
        assert response.headers["x-gatehouse-deployment"] == "half-broken@b"
        attempts.append(int(response.headers["x-gatehouse-attempts"]))
    assert set(attempts) <= {1, 2} and 2 in attempts
    record = usage_wait(response.headers["x-request-id"])
    if record.attempts == 2:
        assert record.metadata["attempt_trail"][0]["deployment"] == "half-broken@a"


def test_midstream_failure_is_delivered_in_stream(demo):
    faulty_model(demo, "stream-breaker", {"x-sim-fault": "midstream"})
    body = {"model": "stream-breaker", "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST",
        demo.base_url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {demo.secret}"},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
        request_id = response.headers["x-request-id"]
    assert any('"error"' in line for line in lines)
    record = usage_wait(request_id)
    assert record.status_code >= 500 or record.status_code == 429


def test_client_disconnect_mid_stream_stops_the_call_and_is_recorded(demo):
    provider = provider_services.provider_create(
        name="sim-slow",
        kind="openai",
        base_url="sim://openai/v1",
        secret="x",
        extra_headers={"x-sim-latency-scale": "1"},
    )
    card = ModelCard.objects.get(name="gpt-4o-mini")
    provider_services.deployment_create(model=card, provider=provider, name="slow-mini", upstream_model="gpt-5.5")
    provider_services.deployment_update(deployment=card.deployments.exclude(name="slow-mini").get(), is_active=False)
    gateway_sync()
    body = {"model": "gpt-4o-mini", "messages": HELLO, "stream": True, "max_tokens": 2000}
    started = time.monotonic()
    with httpx.stream(
        "POST",
        demo.base_url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {demo.secret}"},
        timeout=30,
    ) as response:
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if line.startswith("data: {"):
                break  # first content chunk: hang up
    record = usage_wait(request_id)
    assert record.status_code == 499 and record.error_type == "client_disconnected"
    assert record.output_tokens < 2000
    assert record.latency_ms / 1000 < time.monotonic() - started + 1


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": "not an object"}}]},
            "tools[0].function.parameters",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "nonsense"}}}]},
            "tools[0].function.parameters",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}}},
            "response_format.json_schema.schema",
        ),
        ({"logit_bias": {"not-a-token": 5}}, "logit_bias"),
        ({"logit_bias": {"50256": 1.5}}, "logit_bias"),
        ({"logit_bias": {"50256": 101}}, "logit_bias"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "42"}, "seed"),
        ({"n": 1000}, "n"),
    ],
)
def test_requests_openai_rejects_are_rejected(demo, extra, param):
    response = post(demo, {"model": "gpt-4o-mini", "messages": HELLO, **extra})
    assert_openai_error(response, 400, param=param)
    assert usage_wait(response.headers["x-request-id"]).status_code == 400


def test_valid_schemas_seed_and_logit_bias_pass(demo):
    response = post(
        demo,
        {
            "model": "gpt-4o-mini",
            "messages": HELLO,
            "seed": 7,
            "n": 2,
            "logit_bias": {"50256": -100},
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
                    },
                }
            ],
        },
    )
    assert response.status_code == 200, response.text
