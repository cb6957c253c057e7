"""Every exit path settles: an upstream that answers nonsense, a stream that breaks
mid-way, an unexpected error inside the relay, bodies near the size limit — each
ends with an OpenAI-shaped answer, exactly one usage record and the budget hold
released or settled."""

# ruff: noqa: F811 - the fixtures are imported from tests.budgets.helpers

from __future__ import annotations

import base64
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from budgets import services as budget_services
from budgets.models import BudgetHold, HoldStatus, UsageRecord
from providers import services as provider_services
from tests.budgets.helpers import (  # noqa: F401 - fixtures
    budget_sync,
    clean_budget_state,
    priced_model,
    store,
    wait_until,
)
from tests.conftest import FAST, gateway_sync, usage_wait

PROMPT = [{"role": "user", "content": "hello there"}]


class _Upstream(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that answers with whatever the test scripted."""

    script: dict = {}

    def log_message(self, *args) -> None:
        return None

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        length = int(self.headers.get("content-length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if request.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            for frame in self.script["frames"]:
                self.wfile.write(b"data: " + frame + b"\n\n")
                self.wfile.flush()
            if self.script.get("done", True):
                self.wfile.write(b"data: [DONE]\n\n")
            return
        body = self.script["body"]
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def scripted(demo, upstream):
    """A model whose only deployment is the scripted upstream, under a hard key budget."""
    provider = provider_services.provider_create(
        name="scripted",
        kind="openai",
        base_url=f"http://127.0.0.1:{upstream.server_address[1]}/v1",
        secret="x",
        organization=demo.org,
    )
    card, _ = provider_services.model_card_upsert(
        name="scripted-model",
        vendor="openai",
        input_price=Decimal("1"),
        output_price=Decimal("2"),
        cached_input_price=Decimal("1"),
        capabilities=["chat", "streaming"],
        max_output_tokens=1000,
    )
    provider_services.deployment_create(model=card, provider=provider, name="scripted@local")
    budget = budget_services.budget_create(organization=demo.org, scope="key", scope_id=demo.key.id, amount="5")
    gateway_sync()
    budget_sync()
    return budget


def _chat(demo, *, stream=False, body=None, content=None, timeout=15):
    payload = body or {"model": "scripted-model", "messages": PROMPT, "max_tokens": 50, "stream": stream}
    return httpx.post(
        demo.base_url + "/chat/completions",
        json=payload if content is None else None,
        content=content,
        headers={"authorization": f"Bearer {demo.secret}", "content-type": "application/json"},
        timeout=timeout,
    )


def _hold_closed(request_id: str) -> BudgetHold:
    return wait_until(lambda: BudgetHold.objects.filter(request_id=request_id).exclude(status=HoldStatus.HELD).first())


def _chunk(content: str, **extra) -> bytes:
    delta = {"content": content} if content else {"role": "assistant", "content": ""}
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return json.dumps(
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice], **extra}
    ).encode()


def test_an_upstream_answer_the_gateway_cannot_read_is_settled_with_a_record(demo, store, scripted):
    _Upstream.script = {"body": b'{"id": "x", "object": "chat.completion", "choices": {"oops": 7}}'}
    response = _chat(demo)
    assert response.status_code >= 500, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    request_id = response.headers["x-request-id"]
    record = usage_wait(request_id)
    assert record.status_code == response.status_code
    assert UsageRecord.objects.filter(request_id=request_id).count() == 1
    assert _hold_closed(request_id).status == HoldStatus.RELEASED


@pytest.mark.parametrize("bad", [b'{"choices": 5}', b'{"choices": [5]}'], ids=["unreadable", "unexpected"])
def test_a_stream_that_breaks_mid_way_records_the_output_already_sent(demo, store, scripted, bad):
    words = [f" word{i}" for i in range(40)]
    frames = [_chunk("")] + [_chunk(w) for w in words] + [bad]
    _Upstream.script = {"frames": frames, "done": False}
    response = _chat(demo, stream=True)
    assert response.status_code == 200
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert b"[DONE]" not in "\n".join(events).encode()
    last = json.loads(events[-1])
    assert "error" in last and last["error"]["message"]
    relayed = "".join(
        (json.loads(e)["choices"][0]["delta"].get("content") or "") for e in events[:-1] if json.loads(e).get("choices")
    )
    assert relayed == "".join(words)
    record = usage_wait(response.headers["x-request-id"])
    assert record.status_code >= 500, "a stream that failed is not recorded as a success"
    assert record.output_tokens >= 40, "the output relayed before the failure is counted"
    assert record.cost > 0
    hold = _hold_closed(response.headers["x-request-id"])
    assert hold.status in (HoldStatus.SETTLED, HoldStatus.RELEASED)


@pytest.mark.parametrize(
    ("kind", "base_url"),
    [("openai", "sim://openai/v1"), ("anthropic", "sim://anthropic"), ("gemini", "sim://gemini/v1beta")],
)
def test_a_stream_cut_by_the_upstream_records_its_output(demo, kind, base_url):
    """The simulator's `midstream` fault: the provider breaks the stream after a few chunks."""
    provider = provider_services.provider_create(
        name="sim-midstream",
        kind=kind,
        base_url=base_url,
        secret="x",
        extra_headers={**FAST, "x-sim-fault": "midstream", "x-sim-output-tokens": "200"},
        organization=demo.org,
    )
    card, _ = provider_services.model_card_upsert(
        name="midstream-model",
        vendor="openai",
        input_price=Decimal("1"),
        output_price=Decimal("2"),
        capabilities=["chat", "streaming"],
    )
    provider_services.deployment_create(model=card, provider=provider, name="midstream@sim")
    gateway_sync()
    response = httpx.post(
        demo.base_url + "/chat/completions",
        json={"model": "midstream-model", "messages": PROMPT, "stream": True},
        headers={"authorization": f"Bearer {demo.secret}"},
        timeout=15,
    )
    assert response.status_code == 200
    sent = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
    text = "".join(
        (c["choices"][0]["delta"].get("content") or "")
        for c in sent
        if c.get("choices") and c["choices"][0].get("delta")
    )
    assert text, "some content was relayed before the cut"
    assert "error" in sent[-1]
    record = usage_wait(response.headers["x-request-id"])
    assert record.status_code >= 500
    assert record.output_tokens >= len(text.split()), "every relayed word is counted"


def test_bodies_up_to_the_configured_limit_are_accepted_and_larger_ones_get_413(demo):
    image = base64.b64encode(b"\x89PNG" + b"\0" * (3 * 1024 * 1024)).decode()  # ~4 MB of base64 would be too big
    image = image[: 3 * 1024 * 1024]  # a 3 MiB data URL: above Django's 2.5 MiB form limit, below ours (4 MiB)
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + image}},
                ],
            }
        ],
        "max_tokens": 5,
    }
    content = json.dumps(body).encode()
    assert 3 * 1024 * 1024 < len(content) < 4 * 1024 * 1024
    response = _chat(demo, content=content, timeout=60)
    assert response.status_code == 200, response.text[:500]
    assert usage_wait(response.headers["x-request-id"]).status_code == 200

    too_big = json.dumps({**body, "pad": "x" * (5 * 1024 * 1024)}).encode()
    response = _chat(demo, content=too_big, timeout=60)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    record = usage_wait(response.headers["x-request-id"])
    assert record.status_code == 413 and record.key_id == demo.key.id


@pytest.mark.services
def test_an_unexpected_store_error_is_answered_recorded_and_its_hold_released(demo, settings):
    """Shared state a process did not expect (a rate-limit bucket of the wrong type in
    Redis makes the limiter's script fail): the request is answered, recorded once, and
    the budget hold it had placed is released at once."""
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    import redis

    from budgets import services as budgets
    from budgets.conf import budget_settings

    card, deployment = priced_model()
    budgets.budget_create(organization=demo.org, scope="key", scope_id=demo.key.id, amount="5")
    budgets.rate_limit_set(organization=None, scope="deployment", scope_id=deployment.id, rpm=1000)
    budget_sync()
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set(f"{budget_settings().redis_prefix}r:deployment:{deployment.id}:requests", "not a bucket")
    try:
        response = httpx.post(
            demo.base_url + "/chat/completions",
            json={"model": card.name, "messages": PROMPT, "max_tokens": 5},
            headers={"authorization": f"Bearer {demo.secret}"},
            timeout=15,
        )
    finally:
        client.delete(f"{budget_settings().redis_prefix}r:deployment:{deployment.id}:requests")
    assert response.status_code in (500, 503), response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    request_id = response.headers["x-request-id"]
    assert usage_wait(request_id).status_code == response.status_code
    assert UsageRecord.objects.filter(request_id=request_id).count() == 1
    assert _hold_closed(request_id).status == HoldStatus.RELEASED
