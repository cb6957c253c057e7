"""A stand-in gateway worker for the journal tests, run as its own process.

`python -m tests.budgets.journal_worker <journal dir> <scenario>` journals a few requests the way
the gateway does, prints `ready` and waits to be killed.

Scenarios:
- `streams`: request `req-a` streams 147 chunks' worth of output and is cut off,
  `req-b` is settled (done), `req-c` is a refused request (done, no begin), `req-d`
  streams with several progress entries (last: 300 tokens) and is cut off.
- `rotate`: the journal rotates on every flush; `req-r` runs across a flush that
  writes `req-s1`..`req-s3` to the database; `req-s4` is settled after the flush.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
    django.setup()
    from budgets.usage import UsageEvent, UsageSink

    directory, scenario = Path(sys.argv[1]), sys.argv[2]
    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def skeleton(request_id: str, **extra) -> UsageEvent:
        values = {
            "request_id": request_id,
            "created_at": at,
            "organization_id": 42,
            "team_id": 5,
            "user_id": 6,
            "key_id": 7,
            "endpoint": "chat",
            "status_code": 0,
            "stream": True,
            "model_requested": "claude-test",
            "model_used": "claude-test",
            "deployment_id": 3,
            "deployment_name": "claude-test@sim",
            "provider_name": "sim",
            "input_tokens": 1000,
            "tokens_estimated": True,
            "input_price": Decimal("3"),
            "output_price": Decimal("15"),
            "cached_input_price": Decimal("0.3"),
        }
        values.update(extra)
        return UsageEvent(**values)

    def settled(request_id: str, **extra) -> UsageEvent:
        values = {"status_code": 200, "input_tokens": 980, "output_tokens": 40, "tokens_estimated": False}
        values.update(extra)
        return skeleton(request_id, **values)

    if scenario == "streams":
        sink = UsageSink(journal_dir=directory, buffer_max=1000)
        sink.begin(skeleton("req-a"))
        sink.begin(skeleton("req-b"))
        sink.begin(skeleton("req-d"))
        for chunk in range(1, 148):
            if chunk % 50 == 0:
                sink.progress("req-a", chunk)
        sink.progress("req-a", 147)
        sink.add(settled("req-b", cost=Decimal("0.003540")))
        sink.add(settled("req-c", status_code=404, model_used="", error_code="model_not_found"))
        for tokens in (100, 200, 300):
            sink.progress("req-d", tokens)
    elif scenario == "rotate":
        sink = UsageSink(journal_dir=directory, buffer_max=1000, rotate_bytes=0)
        sink.begin(skeleton("req-r"))
        sink.progress("req-r", 20)
        for n in (1, 2, 3):
            sink.add(settled(f"req-s{n}"))
        written = sink.flush()
        assert written == 3, written
        sink.progress("req-r", 147)
        sink.add(settled("req-s4"))
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print("ready", flush=True)
    time.sleep(120)


if __name__ == "__main__":
    main()
