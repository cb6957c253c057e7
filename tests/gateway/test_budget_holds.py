"""A gateway process that dies mid-request leaves its hold behind; the hold expires,
is released, and the release shows in the ledger of holds."""

# ruff: noqa: F811 - the fixtures are imported from tests.budgets.helpers

from __future__ import annotations

import os
import signal
import threading
import time

import httpx

from budgets import services
from budgets.conf import budget_settings
from budgets.models import BudgetCounter, BudgetHold, HoldStatus
from tests.budgets.helpers import PROMPT, clean_budget_state, priced_model, store, tick, wait_until  # noqa: F401
from tests.conftest import free_port


def test_hold_of_a_killed_process_expires_and_is_released(demo, store, settings):
    from tests.budgets.helpers import harness
    from tests.gateway.test_processes import start_gateway

    slow, _ = priced_model(suffix="-slow", output_tokens=2000, extra_headers={"x-sim-latency-scale": "1"})
    budget = services.budget_create(organization=demo.org, scope="key", scope_id=demo.key.id, amount="1")
    env = {"GATEHOUSE_BUDGET_HOLD_TTL": "1", "GATEHOUSE_REDIS_PREFIX": budget_settings().redis_prefix}
    if store == "db":
        env["REDIS_URL"] = ""
    port = free_port()
    server = start_gateway(port, **env)
    started = threading.Event()

    def stream() -> None:
        try:
            with httpx.stream(
                "POST",
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json={"model": slow.name, "messages": PROMPT, "max_tokens": 2000, "stream": True},
                headers={"authorization": f"Bearer {demo.secret}"},
                timeout=30,
            ) as response:
                for _ in response.iter_bytes():
                    started.set()
        except httpx.HTTPError:
            pass  # the server dies under it

    reader = threading.Thread(target=stream, daemon=True)
    reader.start()
    try:
        assert started.wait(15)
        time.sleep(0.5)  # long enough for the ledger to be written in Redis mode
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
    reader.join(timeout=10)
    # Only the hold is left: no usage record, no settlement.
    counter = BudgetCounter.objects.filter(budget=budget).first()
    if store == "db":
        assert counter.held_units > 0
        assert BudgetHold.objects.get(organization_id=demo.org.id).status == HoldStatus.HELD
    time.sleep(1.2)  # past the one-second hold lifetime
    settings.GATEHOUSE_BUDGETS = {**settings.GATEHOUSE_BUDGETS, "HOLD_TTL": 1}
    harness().rebuild()
    tick()  # a sweep, as any gateway process's runtime runs every few seconds
    hold = wait_until(lambda: BudgetHold.objects.filter(organization_id=demo.org.id, status=HoldStatus.EXPIRED).first())
    assert hold.actual_units is None and hold.settled_at is not None and hold.amount_units > 0
    counter = wait_until(lambda: BudgetCounter.objects.filter(budget=budget, held_units=0).first())
    assert counter.spent_units == 0
