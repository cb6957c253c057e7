"""The cost of a routing decision alone, without any network or database.

    .venv/bin/python bench/routing.py            # about ten seconds
    .venv/bin/python bench/routing.py --quick

A decision is what the gateway does between validating a request and calling
upstream: classify it (header, key default, detector), match the organization's
rules, resolve the route, filter by the compliance matrix, read the candidates'
health from the in-process state and order them by the strategy. The scenario is
the one the design targets: a route of 5 deployments behind 20 rules that do not
match (so every rule is evaluated), a 2 KB prompt. Figures are per decision, on
one core, from `time.perf_counter_ns` around each call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
os.environ.setdefault("GATEHOUSE_DATA_DIR", str(ROOT / "var" / "bench-routing"))
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from console.keycache import KeyContext  # noqa: E402
from providers.adapters.base import Target  # noqa: E402
from providers.snapshot import CatalogSnapshot, DeploymentInfo, ModelInfo, Price  # noqa: E402
from routing.engine.detect import detect  # noqa: E402
from routing.engine.snapshot import policy_compile  # noqa: E402
from routing.engine.state import routing_state_set  # noqa: E402
from routing.engine.state.memory import MemoryState  # noqa: E402
from routing.pipeline.classify import classify  # noqa: E402
from routing.pipeline.context import RequestContext  # noqa: E402
from routing.pipeline.route import route_order, route_resolve  # noqa: E402
from routing.policy.document import policy_empty, policy_normalize  # noqa: E402

PROMPT = ("The quarterly report for the procurement team covers 42 vendors and 17 open contracts. " * 24)[:2000]
BODY = {
    "model": "fast",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}],
    "max_tokens": 256,
}
KEY = KeyContext(
    key_id=1,
    name="bench",
    prefix="sk-gh-bench",
    organization_id=1,
    team_id=None,
    user_id=None,
    allowed_models=frozenset(),
    expires_at=None,
    revoked=False,
    data_classification="internal",
    app_name="",
    tags=(),
)


def catalog() -> CatalogSnapshot:
    models = {}
    for index in range(5):
        name = f"model-{index}"
        deployment = DeploymentInfo(
            id=index + 1,
            name=f"{name}@p",
            model_name=name,
            provider_name="p",
            provider_kind="openai",
            organization_id=None,
            weight=1 + index,
            target=Target("openai", "http://127.0.0.1:1/v1", "k", name),
        )
        models[name] = ModelInfo(
            id=index + 1,
            name=name,
            vendor="v",
            tier="mid",
            context_window=128_000,
            max_output_tokens=4096,
            capabilities=frozenset({"chat"}),
            lifecycle="active",
            price=Price(Decimal(index + 1), Decimal(2 * index + 2), Decimal(0)),
            created=0,
            deployments=(deployment,),
        )
    return CatalogSnapshot(models=models)


def document(strategy: str, *, matrix: bool) -> dict:
    doc = policy_empty()
    doc["routes"] = [
        {"name": "fast", "strategy": strategy, "targets": [{"model": f"model-{i}", "weight": i + 1} for i in range(5)]}
    ]
    doc["rules"] = [
        {
            "name": f"rule {i}",
            "route": "fast",
            "keywords": [f"keyword{i}", f"other{i}"],
            "tags": [] if i % 2 else [],
            "workflows": [f"workflow-{i}"] if i % 3 == 0 else [],
            "pattern": rf"\bticket-{i}\d+\b" if i % 4 == 0 else "",
            "min_tokens": 100_000 if i % 5 == 0 else 0,
        }
        for i in range(20)
    ]
    if matrix:
        doc["matrix"] = {f"model-{i}": ["public", "internal", "confidential", "pii"] for i in range(5)}
    return policy_normalize(doc)


def measure(name: str, strategy: str, *, matrix: bool, runs: int, state=None) -> tuple[str, float, float, float]:
    policy = policy_compile(
        organization_id=1,
        version=1,
        document=document(strategy, matrix=matrix),
        catalog=catalog(),
        breakers={},
        team_ids={},
    )
    routing_state_set(state or MemoryState())

    async def loop() -> list[int]:
        samples = []
        headers: dict[str, str] = {}
        for _ in range(runs):
            started = time.perf_counter_ns()
            ctx = RequestContext(request_id="r", endpoint="chat", key=KEY, model_requested="fast")
            classify(ctx, policy, BODY, headers)
            plan = route_resolve(ctx, policy, BODY, capability="chat")
            await route_order(ctx, plan)
            samples.append(time.perf_counter_ns() - started)
            assert len(plan.ordered) == 5
        return samples

    asyncio.run(loop())  # warm-up
    samples = sorted(asyncio.run(loop()))
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    return name, p50, p99, statistics.fmean(samples) / 1000


def detector(runs: int) -> tuple[str, float, float, float]:
    kinds = ("email", "phone", "card", "ssn", "iban")
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        detect(PROMPT, kinds)
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    return (
        "detector alone, 2 KB prompt, 5 detectors",
        samples[len(samples) // 2] / 1000,
        samples[int(len(samples) * 0.99)] / 1000,
        statistics.fmean(samples) / 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--redis", metavar="URL", help="also measure with the Redis state backend at URL")
    args = parser.parse_args()
    runs = 2000 if args.quick else 20_000
    rows = [
        measure(f"{strategy}, 5 deployments, 20 rules", strategy, matrix=False, runs=runs)
        for strategy in ("weighted", "round_robin", "least_latency", "least_busy", "lowest_cost")
    ]
    rows.append(
        measure("weighted + compliance matrix (detector on the 2 KB prompt)", "weighted", matrix=True, runs=runs)
    )
    if args.redis:
        from routing.engine.state.redis import RedisState

        for ttl, label in (
            (0.0, "every decision reads Redis (one pipelined round trip)"),
            (0.05, "Redis, reads reused for 50 ms (the default)"),
        ):
            state = RedisState(args.redis, prefix="gatehouse:routing:bench", cache_ttl=ttl)
            rows.append(measure(f"weighted, {label}", "weighted", matrix=False, runs=runs, state=state))
            state.reset()
    rows.append(detector(runs))
    lines = ["| routing decision | p50 µs | p99 µs | mean µs |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {p50:.1f} | {p99:.1f} | {mean:.1f} |" for name, p50, p99, mean in rows]
    lines.append("")
    lines.append(f"Machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; {runs} decisions per row.")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
