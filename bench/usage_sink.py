"""What the usage sink costs on the event loop, per record: `add` (values made
storable, one journal line) with and without the journal, `begin` and `progress`;
and what a flush costs per record, with and without a refused record in the batch.

    python bench/usage_sink.py [--records N]

Uses a throwaway SQLite database in a temporary directory (migrated first) and
prints one JSON line of microseconds per record.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def record(event_cls, **extra):
    values = {
        "request_id": f"req_{uuid.uuid4().hex}",
        "created_at": datetime.now(UTC),
        "organization_id": 1,
        "team_id": 2,
        "user_id": 3,
        "key_id": 4,
        "endpoint": "chat",
        "status_code": 200,
        "model_requested": "gpt-4o-mini",
        "model_used": "gpt-4o-mini",
        "deployment_id": 5,
        "deployment_name": "gpt-4o-mini@openai",
        "provider_name": "openai",
        "attempts": 1,
        "input_tokens": 812,
        "output_tokens": 240,
        "input_price": Decimal("0.15"),
        "output_price": Decimal("0.6"),
        "cost": Decimal("0.0002658"),
        "latency_ms": 812.5,
        "ttft_ms": 120.2,
        "tags": ["search", "beta"],
        "workflow": "support-bot",
        "metadata": {"ticket": "T-1234", "attempt_trail": [{"deployment": "gpt-4o-mini@openai", "status": 200}]},
    }
    values.update(extra)
    return event_cls(**values)


def per_record_us(fn, events) -> float:
    start = time.perf_counter()
    for event in events:
        fn(event)
    return (time.perf_counter() - start) / len(events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=5000)
    args = parser.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from budgets.usage import UsageEvent, UsageSink

        plain = UsageSink(journal_dir=None, buffer_max=10 * n)
        journaled = UsageSink(journal_dir=Path(tmp) / "journal", buffer_max=10 * n)
        out = {"records": n}
        out["add_us_no_journal"] = per_record_us(plain.add, [record(UsageEvent) for _ in range(n)])
        out["add_us_journal"] = per_record_us(journaled.add, [record(UsageEvent) for _ in range(n)])
        out["begin_us_journal"] = per_record_us(journaled.begin, [record(UsageEvent) for _ in range(n)])
        ids = [f"req_{i}" for i in range(n)]
        start = time.perf_counter()
        for rid in ids:
            journaled.progress(rid, 100)
        out["progress_us_journal_unknown_id"] = (time.perf_counter() - start) / n * 1e6
        start = time.perf_counter()
        written = plain.flush()
        out["flush_us_per_record"] = (time.perf_counter() - start) / written * 1e6
        for _ in range(n - 1):
            plain.add(record(UsageEvent))
        plain.add(record(UsageEvent, status_code=None))  # refused by the database: bisection
        start = time.perf_counter()
        written = plain.flush()
        out["flush_us_per_record_one_refused"] = (time.perf_counter() - start) / written * 1e6
        out["dead_letters"] = plain.dead_letters
        journaled.flush_final()
        print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
