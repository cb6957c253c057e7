"""manage.py demo_traffic: real requests through a running gateway so the console has usage.

Uses the demo key that `seed_demo` wrote, a mix of chat models (some streaming),
embeddings, attribution headers and a few deliberately bad requests. Waits for
the server to answer first; if it never does, says so and exits successfully.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

CHAT_MODELS = (
    "gpt-4o-mini",
    "claude-sonnet-4-6",
    "gemini-3.1-pro",
    "gpt-5.4-mini",
    "gemini-flash-lite",
    "deepseek-v4-pro",
    "claude-haiku-4-5",
    "llama-4-maverick",
    "qwen-3.5",
    "mistral-large",
    "gpt-5.5",
    "claude-opus-4-6",
)
EMBEDDING_MODELS = ("text-embedding-3-small", "gemini-embedding", "text-embedding-3-large")
PROMPTS = (
    "Summarize this support ticket in two sentences: the customer cannot export invoices as CSV since Monday.",
    "Draft a polite reply declining a meeting on Friday and proposing Tuesday morning instead.",
    "Review this function for bugs: def mean(xs): return sum(xs) / len(xs)",
    "List three risks of migrating a billing database during business hours.",
    "Explain the difference between a token bucket and a leaky bucket rate limiter.",
    "Classify the sentiment of: 'The new dashboard is fast but the export button moved again.'",
    "Write release notes for: faster search, dark mode, fixed login timeout on Safari.",
    "Extract the company, amount and due date from: 'Invoice 4471 from Northwind, $12,400 due 30 June.'",
)
TEXTS = (
    "How do I reset my password?",
    "Quarterly revenue grew 12 percent on strong subscription renewals.",
    "Gatehouse routes model calls by policy, cost and data classification.",
)
TAGS = ("support", "research", "internal-apps", "summarize", "code-review", "finance")
WORKFLOWS = ("ticket-triage", "weekly-report", "code-review", "kb-search", "release-notes")


class Command(BaseCommand):
    help = "Send demo requests through a running gateway's /v1 API with the demo key from seed_demo."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The gateway's base URL.")
        parser.add_argument("--requests", type=int, default=60, help="How many requests to send (default 60).")
        parser.add_argument("--concurrency", type=int, default=6, help="Requests in flight at once (default 6).")
        parser.add_argument("--wait", type=float, default=30.0, help="Seconds to wait for the gateway (default 30).")
        parser.add_argument("--key-file", type=Path, default=None, help="Default: <data dir>/demo_key.txt.")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for a repeatable mix.")

    def handle(self, *args, **options) -> None:
        if options["requests"] < 1 or options["concurrency"] < 1:
            raise CommandError("--requests and --concurrency must be 1 or more.")
        key_file = options["key_file"] or Path(settings.DATA_DIR) / "demo_key.txt"
        try:
            secret = key_file.read_text().strip()
        except OSError as exc:
            raise CommandError(f"{key_file}: no demo key ({exc.strerror}); run manage.py seed_demo first.") from exc
        base = options["url"].rstrip("/") + "/v1"
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(timeout=httpx.Timeout(120.0, connect=5.0), headers=headers) as client:
            listing = self.wait_for(client, base, options["wait"])
            if listing is None:
                wait = options["wait"]
                self.stdout.write(f"No gateway answered at {options['url']} within {wait:.0f} s; no demo traffic sent.")
                return
            if listing.status_code == 401:
                raise CommandError("The gateway refused the demo key (401); run manage.py seed_demo again.")
            available = _model_ids(listing)
            rng = random.Random(options["seed"])  # a traffic mix, not a secret
            jobs = _jobs(options["requests"], available, rng)
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=options["concurrency"]) as pool:
                outcomes = list(pool.map(lambda job: _send(client, base, job), jobs))
        statuses = Counter(status for status, _ in outcomes)
        cost = sum((c for _, c in outcomes), Decimal(0))
        ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
        errors = ", ".join(f"{status} x{n}" for status, n in sorted(statuses.items()) if not 200 <= status < 300)
        self.stdout.write(
            f"Sent {len(jobs)} requests to {base} in {time.monotonic() - started:.1f} s: {ok} ok"
            + (f", errors {errors}" if errors else "")
            + f"; reported cost ${cost:.6f}."
        )

    def wait_for(self, client: httpx.Client, base: str, seconds: float) -> httpx.Response | None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                return client.get(f"{base}/models", timeout=5.0)
            except httpx.TransportError:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.5)


def _model_ids(response: httpx.Response) -> set[str]:
    try:
        return {item["id"] for item in response.json().get("data", []) if isinstance(item, dict) and "id" in item}
    except (ValueError, AttributeError):
        return set()


def _jobs(count: int, available: set[str], rng: random.Random) -> list[dict[str, Any]]:
    chat = [m for m in CHAT_MODELS if m in available] or ["gpt-4o-mini"]
    embed = [m for m in EMBEDDING_MODELS if m in available] or ["text-embedding-3-small"]
    bad_every = max(count // max(2, count // 25), 1) if count >= 10 else 0
    jobs: list[dict[str, Any]] = []
    for index in range(count):
        headers = {
            "x-gatehouse-tags": ",".join(rng.sample(TAGS, k=rng.randint(1, 2))),
            "x-gatehouse-workflow": rng.choice(WORKFLOWS),
        }
        if bad_every and index % bad_every == bad_every - 1:
            jobs.append(_bad(index // bad_every, headers))
        elif index % 5 == 4:
            body = {"model": rng.choice(embed), "input": rng.sample(TEXTS, k=rng.randint(1, len(TEXTS)))}
            jobs.append({"path": "/embeddings", "body": body, "headers": headers, "stream": False})
        else:
            stream = index % 3 == 0
            body = {
                "model": rng.choice(chat),
                "messages": [
                    {"role": "system", "content": "Answer briefly and plainly for Acme Corp staff."},
                    {"role": "user", "content": rng.choice(PROMPTS)},
                ],
                "max_tokens": rng.choice((64, 128, 256, 400)),
                "user": f"employee-{rng.randint(1, 40)}",
                "metadata": {"ticket": str(rng.randint(1000, 9999))},
            }
            if stream:
                body["stream"] = True
                body["stream_options"] = {"include_usage": True}
            jobs.append({"path": "/chat/completions", "body": body, "headers": headers, "stream": stream})
    return jobs


def _bad(number: int, headers: dict[str, str]) -> dict[str, Any]:
    """Requests the gateway must refuse cleanly: an unknown model, a malformed body, a wrong key."""
    kind = number % 3
    if kind == 0:
        body: dict[str, Any] = {"model": "gpt-9", "messages": [{"role": "user", "content": "hello"}]}
        return {"path": "/chat/completions", "body": body, "headers": headers, "stream": False}
    if kind == 1:
        body = {"model": "gpt-4o-mini", "messages": "not a list", "temperature": 7}
        return {"path": "/chat/completions", "body": body, "headers": headers, "stream": False}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    wrong = {**headers, "Authorization": "Bearer sk-gh-not-a-real-key"}
    return {"path": "/chat/completions", "body": body, "headers": wrong, "stream": False}


def _send(client: httpx.Client, base: str, job: dict[str, Any]) -> tuple[int, Decimal]:
    """One request; returns the status (0 when the transport failed) and the reported cost."""
    url = base + job["path"]
    try:
        if job["stream"]:
            with client.stream("POST", url, json=job["body"], headers=job["headers"]) as response:
                for line in response.iter_lines():
                    if line.strip() == "data: [DONE]":
                        break
                return response.status_code, _cost(response)
        response = client.post(url, json=job["body"], headers=job["headers"])
        return response.status_code, _cost(response)
    except httpx.HTTPError:
        return 0, Decimal(0)


def _cost(response: httpx.Response) -> Decimal:
    try:
        return Decimal(response.headers.get("x-gatehouse-cost", "0"))
    except InvalidOperation:
        return Decimal(0)
