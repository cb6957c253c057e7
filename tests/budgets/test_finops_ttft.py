"""TTFT is the time to the first content token, not to the first (role-only) chunk: an
upstream that sends its role chunk at once and its first words 400 ms later."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from providers import services as provider_services
from tests.conftest import gateway_sync, usage_wait

CONTENT_DELAY = 0.4


def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
    body = {
        "id": "chatcmpl-ttft",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "slow-words",
        "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class _SlowWords(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        return None

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(chunk({"role": "assistant", "content": ""}))  # role only, at once
        self.wfile.flush()
        time.sleep(CONTENT_DELAY)
        self.wfile.write(chunk({"content": "Hello"}))
        self.wfile.write(chunk({"content": " there"}, "stop"))
        self.wfile.write(chunk({}, usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def slow_words():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowWords)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_ttft_counts_to_the_first_content_token_not_the_role_chunk(demo, slow_words):
    provider = provider_services.provider_create(
        name="slow-words",
        kind="openai",
        base_url=f"http://127.0.0.1:{slow_words.server_address[1]}/v1",
        secret="sk-slow",
        organization=demo.org,
    )
    card, _ = provider_services.model_card_upsert(
        name="slow-words", vendor="openai", input_price=Decimal(1), output_price=Decimal(2), capabilities=["chat"]
    )
    provider_services.deployment_create(model=card, provider=provider, name="slow-words@local")
    gateway_sync()
    started = time.perf_counter()
    with httpx.stream(
        "POST",
        demo.base_url + "/chat/completions",
        json={"model": "slow-words", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={"authorization": f"Bearer {demo.secret}"},
        timeout=15,
    ) as response:
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        text = "".join(response.iter_text())
    elapsed = time.perf_counter() - started
    assert "Hello" in text
    record = usage_wait(request_id)
    assert record.ttft_ms >= CONTENT_DELAY * 1000 * 0.95  # the role chunk came at once: not counted
    assert record.ttft_ms <= record.latency_ms <= elapsed * 1000 + 50
