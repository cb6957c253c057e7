"""CPU per request of two versions of Gatehouse, measured side by side.

    git worktree add /tmp/before 324b5fe^          # any earlier commit
    .venv/bin/python bench/paired.py /tmp/before . [--stream] [--b-guard-off]

Each tree gets its own bench database (its own `bench/run.py` prepares it) and one
gateway worker; both call one simulator. A single load generator sends one request
to A, then one to B (then B, A, alternating the order), at one request at a time, so
whatever else the machine does in a round falls on both alike. CPU time per request
is read from /proc for each gateway process; a round's difference B − A is far
steadier than two separate runs' (on a shared 2-core machine separate runs of the
same case have differed by 2×, paired rounds by about 0.1 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
from pathlib import Path
from types import ModuleType

import aiohttp
import orjson

PY = sys.executable


def tree_bench(root: Path) -> ModuleType:
    """The tree's own `bench/run.py` (its `prepare` knows that tree's models)."""
    spec = importlib.util.spec_from_file_location(f"bench_run_{len(sys.modules)}", root / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.ROOT, module.DATA, module.PY = root, root / "var" / "bench", PY
    return module


def tree_env(bench: ModuleType) -> dict[str, str]:
    env = {
        **os.environ,
        "GATEHOUSE_ENV": "development",
        "GATEHOUSE_DEBUG": "false",
        "GATEHOUSE_DATA_DIR": str(bench.DATA),
        "GATEHOUSE_SIMULATOR": "false",
        "GATEHOUSE_SIM_LATENCY_SCALE": "0",
        "GATEHOUSE_LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    return env


async def alternate(targets: list[tuple[str, str]], body: bytes, pairs: int) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as session:

        async def one(url: str, key: str) -> None:
            headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
            async with session.post(url, data=body, headers=headers) as response:
                async for _ in response.content.iter_any():
                    pass
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}")

        for i in range(pairs):
            for url, key in targets if i % 2 else targets[::-1]:
                await one(url, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="tree A (e.g. a worktree of an earlier commit)")
    parser.add_argument("b", type=Path, help="tree B (e.g. .)")
    parser.add_argument("--stream", action="store_true", help="streamed requests (default: not streamed)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=1500, help="requests to each gateway per round")
    for side in ("a", "b"):
        parser.add_argument(
            f"--{side}-guard-off", action="store_true", help=f"tree {side.upper()}: the organization whose guard is off"
        )
    args = parser.parse_args()

    a, b = tree_bench(args.a.resolve()), tree_bench(args.b.resolve())
    env_a, env_b = tree_env(a), tree_env(b)
    sim_port = b.free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    keys_a, keys_b = a.prepare(env_a, sim_url), b.prepare(env_b, sim_url)
    # `prepare` returns the plain organization's key first and, where the tree has one,
    # the guard-off organization's key fourth.
    key_a = keys_a[3] if args.a_guard_off else keys_a[0]
    key_b = keys_b[3] if args.b_guard_off else keys_b[0]
    port_a, port_b = a.free_port(), b.free_port()
    sim = b.uvicorn("providers.simulator.app:app", sim_port, env_b)
    gateway_a = a.uvicorn("gatehouse.asgi:application", port_a, env_a)
    gateway_b = b.uvicorn("gatehouse.asgi:application", port_b, env_b)
    body = orjson.dumps({**b.BODY, "stream": True} if args.stream else b.BODY)
    targets = [
        (f"http://127.0.0.1:{port_a}/v1/chat/completions", key_a),
        (f"http://127.0.0.1:{port_b}/v1/chat/completions", key_b),
    ]
    try:
        b.wait_http(f"{sim_url}/_health")
        for port in (port_a, port_b):
            b.wait_http(f"http://127.0.0.1:{port}/v1/models")
        asyncio.run(alternate(targets, body, 300))  # warm-up
        differences = []
        for number in range(args.rounds):
            before = b.cpu_seconds(gateway_a.pid), b.cpu_seconds(gateway_b.pid)
            asyncio.run(alternate(targets, body, args.pairs))
            cpu_a = (b.cpu_seconds(gateway_a.pid) - before[0]) * 1000 / args.pairs
            cpu_b = (b.cpu_seconds(gateway_b.pid) - before[1]) * 1000 / args.pairs
            differences.append(cpu_b - cpu_a)
            print(
                f"round {number}: A {cpu_a:.3f}  B {cpu_b:.3f}  B − A {cpu_b - cpu_a:+.3f} ms CPU per request",
                flush=True,
            )
        print(
            f"{'stream' if args.stream else 'non-stream'} c=1, B − A: mean {statistics.mean(differences):+.3f}, "
            f"median {statistics.median(differences):+.3f}, "
            f"range {min(differences):+.3f} to {max(differences):+.3f} ms CPU per request"
        )
    finally:
        for process in (gateway_a, gateway_b, sim):
            process.terminate()
        for process in (gateway_a, gateway_b, sim):
            process.wait()


if __name__ == "__main__":
    main()
