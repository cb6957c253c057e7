"""Gateway processes under a real uvicorn: shutdown flushes the usage buffer, and a
revocation reaches every worker process within a second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from budgets.models import UsageRecord
from tests.conftest import database_url_for_tests, free_port


def start_gateway(port: int, *, workers: int = 1, **env_overrides: str) -> subprocess.Popen:
    from django.conf import settings

    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "GATEHOUSE_SIMULATOR_URL": f"http://127.0.0.1:{port}/sim",
        **env_overrides,
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "gatehouse.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            str(workers),
        ],
        cwd=settings.BASE_DIR,
        env=env,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            return server
        except httpx.TransportError:
            if time.monotonic() > deadline:
                server.kill()
                raise AssertionError("server did not start") from None
            time.sleep(0.1)


HELLO = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.django_db(transaction=True)
def test_revocation_reaches_every_worker_process_within_a_second(demo):
    from console.services import api_key_revoke

    port = free_port()
    server = start_gateway(port, workers=2)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    headers = {"authorization": f"Bearer {demo.secret}"}
    try:
        # Fresh connections spread over both workers, so each caches the key.
        for _ in range(40):
            response = httpx.post(url, headers={**headers, "connection": "close"}, json=HELLO)
            assert response.status_code == 200
        api_key_revoke(key=demo.key)
        revoked_at = time.monotonic()
        time.sleep(1.0)
        refused = [httpx.post(url, headers={**headers, "connection": "close"}, json=HELLO) for _ in range(40)]
        statuses = [r.status_code for r in refused]
        assert 200 not in statuses, f"still accepted {time.monotonic() - revoked_at:.2f}s after revocation"
        # Refused as revoked; once an address has failed too often, before any lookup (429).
        assert statuses[0] == 401 and refused[0].json()["error"]["code"] == "revoked_api_key"
        assert all(r.json()["error"]["code"] in ("revoked_api_key", "too_many_auth_failures") for r in refused), (
            statuses
        )
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.django_db(transaction=True)
def test_sigterm_flushes_buffered_usage_records(demo):
    port = free_port()
    # A flush interval of an hour: only the shutdown flush can write the records.
    server = start_gateway(port, GATEHOUSE_USAGE_FLUSH_INTERVAL="3600")
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        ids = []
        for _ in range(5):
            response = httpx.post(url, headers={"authorization": f"Bearer {demo.secret}"}, json=HELLO)
            assert response.status_code == 200
            ids.append(response.headers["x-request-id"])
        time.sleep(0.3)
        assert UsageRecord.objects.filter(request_id__in=ids).count() == 0
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert server.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
    assert UsageRecord.objects.filter(request_id__in=ids, status_code=200).count() == 5
