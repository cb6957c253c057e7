"""A clean shutdown writes what the usage buffer still holds."""

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


@pytest.mark.django_db(transaction=True)
def test_sigterm_flushes_buffered_usage_records(demo):
    from django.conf import settings

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "GATEHOUSE_USAGE_FLUSH_INTERVAL": "3600",  # only the shutdown flush can write them
        "GATEHOUSE_SIMULATOR_URL": f"http://127.0.0.1:{port}/sim",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gatehouse.asgi:application", "--port", str(port), "--log-level", "warning"],
        cwd=settings.BASE_DIR, env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        ids = []
        for _ in range(5):
            response = httpx.post(url, headers={"authorization": f"Bearer {demo.secret}"},
                                  json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
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
