"""Client headers reach an upstream only when its provider allows them by name, and
never the client's credentials: the upstream sees the provider's own key."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from providers import services as provider_services
from tests.conftest import gateway_sync

ANSWER = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def log_message(self, *args) -> None:
        return None

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        _Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("set-cookie", "__cf_bm=tenant-state; Path=/; HttpOnly")  # as CDNs in front of APIs do
        self.send_header("content-length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def recording_model(demo, recorder, allowed=()) -> None:
    provider = provider_services.provider_create(
        name="recording",
        kind="openai",
        base_url=f"http://127.0.0.1:{recorder.server_address[1]}/v1",
        secret="sk-provider-own",
        organization=demo.org,
        forward_headers=list(allowed),
    )
    card, _ = provider_services.model_card_upsert(
        name="recorded-model", vendor="openai", input_price=Decimal(1), output_price=Decimal(2), capabilities=["chat"]
    )
    provider_services.deployment_create(model=card, provider=provider, name="recorded@local")
    gateway_sync()


@pytest.mark.parametrize("allowed", [[], ["traceparent"]])
def test_only_allowed_client_headers_reach_the_upstream(demo, recorder, allowed):
    recording_model(demo, recorder, allowed)
    response = httpx.post(
        demo.base_url + "/chat/completions",
        json={"model": "recorded-model", "messages": [{"role": "user", "content": "hi"}]},
        headers={
            "authorization": f"Bearer {demo.secret}",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "x-custom": "private",
            "x-gatehouse-tags": "a",
        },
        timeout=15,
    )
    assert response.status_code == 200, response.text
    seen = _Recorder.seen[-1]
    assert seen["authorization"] == "Bearer sk-provider-own"
    assert demo.secret not in json.dumps(seen)
    assert "x-custom" not in seen and "x-gatehouse-tags" not in seen
    if allowed:
        assert seen["traceparent"].startswith("00-4bf92f35")
    else:
        assert "traceparent" not in seen


def test_a_cookie_an_upstream_sets_is_never_sent_back(demo, recorder):
    """The upstream client is shared by every tenant: it keeps no cookies."""
    recording_model(demo, recorder)
    for _ in range(3):
        response = httpx.post(
            demo.base_url + "/chat/completions",
            json={"model": "recorded-model", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {demo.secret}"},
            timeout=15,
        )
        assert response.status_code == 200, response.text
        assert "set-cookie" not in response.headers  # nor is it passed on to the client
    assert len(_Recorder.seen) == 3
    assert all("cookie" not in seen for seen in _Recorder.seen)
