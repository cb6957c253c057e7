"""`kill -9` of a gateway worker mid-stream loses no usage record: the request was
journaled as it left for the upstream (and its progress as chunks flowed), and the
next process to start records it from the journal — once, whatever happens next."""

from __future__ import annotations

import time

import httpx
import pytest

from budgets.models import UsageRecord
from providers import services as provider_services
from tests.conftest import free_port, gateway_sync
from tests.gateway.test_processes import start_gateway


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_stream_leaves_a_record_after_the_next_start(demo, tmp_path):
    provider = provider_services.provider_create(
        name="sim-slow",
        kind="openai",
        base_url="sim://openai/v1",
        secret="x",
        extra_headers={"x-sim-latency-scale": "1", "x-sim-output-tokens": "4000"},
    )
    card, _ = provider_services.model_card_upsert(
        name="slow-stream", vendor="openai", input_price="1", output_price="2", capabilities=["chat", "streaming"]
    )
    provider_services.deployment_create(model=card, provider=provider, name="slow@sim")
    gateway_sync()
    journal = tmp_path / "journal"
    port = free_port()
    server = start_gateway(port, GATEHOUSE_JOURNAL_DIR=str(journal))
    chunks = 0
    try:
        with httpx.stream(
            "POST",
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={
                "model": "slow-stream",
                "messages": [{"role": "user", "content": "tell me a long story"}],
                "stream": True,
            },
            headers={"authorization": f"Bearer {demo.secret}"},
            timeout=30,
        ) as response:
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    chunks += 1
                if chunks >= 150:
                    server.kill()  # SIGKILL: no shutdown, no final flush
                    break
    finally:
        server.kill()
        server.wait(10)
    assert chunks >= 150
    assert not UsageRecord.objects.filter(request_id=request_id).exists(), "the killed worker wrote nothing"

    port = free_port()
    restarted = start_gateway(port, GATEHOUSE_JOURNAL_DIR=str(journal))
    try:
        deadline = time.monotonic() + 15
        record = None
        while record is None and time.monotonic() < deadline:
            record = UsageRecord.objects.filter(request_id=request_id).first()
            time.sleep(0.1)
    finally:
        restarted.terminate()
        restarted.wait(10)
    assert record is not None, "the next start recorded the request from the journal"
    assert record.status_code >= 500 and record.error_code == "gateway_worker_lost"
    assert record.key_id == demo.key.id and record.model_requested == "slow-stream"
    assert record.output_tokens >= 100, "the output relayed before the kill is counted"
    assert record.cost > 0
    assert UsageRecord.objects.filter(request_id=request_id).count() == 1
