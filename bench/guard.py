"""CPU cost of the guard stage per call, for the three cases of the budget.

    .venv/bin/python bench/guard.py

1. a 2 KB chat prompt with nothing found (inbound: normalization, detectors,
   content rules, injection score; budget 0.15 ms);
2. the same prompt holding 5 entities, tokenized (budget 0.4 ms);
3. stream restore per chunk: a 200-chunk answer holding the 5 placeholders, some
   split across chunks (budget 10 us per chunk), with and without the output rules;
4. the output rules per chunk of a plain answer (nothing tokenized, nothing to find),
   the common stream.

Uses the built-in default policy (no database); CPU time via time.process_time.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")

import django  # noqa: E402

django.setup()

from guardrails.facade import Guard  # noqa: E402
from guardrails.snapshot import GuardSnapshot  # noqa: E402

PROSE = (
    "The quarterly report for the procurement team covers 42 vendors and 17 open contracts. "
    "Please summarize the risks, the renewal dates and the savings we could negotiate this year. "
) * 12
PROSE = PROSE[:2048]
ENTITIES = (
    " Contact jane.doe@example.com or call +1 415 555 0132; card 4111 1111 1111 1111, "
    "IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789."
)
WITH_ENTITIES = PROSE[: 2048 - len(ENTITIES)] + ENTITIES


def per_call(fn, runs: int) -> float:
    fn()
    started = time.process_time()
    for _ in range(runs):
        fn()
    return (time.process_time() - started) / runs


def body(text: str) -> dict:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "You are concise."}, {"role": "user", "content": text}],
    }


def main() -> None:
    guard = Guard(GuardSnapshot(organizations={}, secret=b"bench" * 8))
    clean, dirty = body(PROSE), body(WITH_ENTITIES)

    def inbound(payload: dict):
        return guard.inbound(organization_id=1, team_id=None, key_id=None, data_class="", endpoint="chat", body=payload)

    found = inbound(dirty)
    assert sum(dict(found.verdict.entities).values()) == 5, found.verdict
    assert not inbound(clean).verdict.entities
    rows = [
        ("2 KB prompt, nothing found", per_call(lambda: inbound(clean), 2000) * 1e3, "ms", 0.15),
        ("2 KB prompt, 5 entities tokenized", per_call(lambda: inbound(dirty), 1000) * 1e3, "ms", 0.4),
    ]

    answer = "Here is the summary for " + " and ".join(found.vault.placeholders) + ". " + "Regards, the team. " * 40
    pieces = [answer[i : i + 7] for i in range(0, len(answer), 7)]
    chunks = [{"id": "c", "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]

    def stream(checked: bool):
        def run():
            sg = guard.stream(found)
            if not checked:
                sg.checker.active = False
            for chunk in chunks:
                sg.feed(chunk)
            sg.finish()

        return run

    for checked, label in ((False, "stream restore per chunk"), (True, "stream restore + output rules per chunk")):
        seconds = per_call(stream(checked), 50) / len(chunks)
        rows.append((label, seconds * 1e6, "us", 10 if not checked else None))

    plain_request = inbound(body("Say hello in five words."))
    prose = "Sure: here is a short greeting for you. Hello there, have a lovely day! " * 4
    plain_chunks = [
        {"id": "c", "choices": [{"index": 0, "delta": {"content": prose[i : i + 6]}, "finish_reason": None}]}
        for i in range(0, len(prose), 6)
    ]

    def plain_stream():
        sg = guard.stream(plain_request)
        for chunk in plain_chunks:
            sg.feed(chunk)
        sg.finish()

    rows.append(
        ("output rules per chunk, plain answer", per_call(plain_stream, 200) / len(plain_chunks) * 1e6, "us", None)
    )
    for label, value, unit, budget in rows:
        limit = f"(budget {budget} {unit})" if budget is not None else ""
        sys.stdout.write(f"{label:<42}{value:>9.3f} {unit} {limit}\n")


if __name__ == "__main__":
    main()
