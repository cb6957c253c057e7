"""Gateway overhead against the simulator: direct calls side by side with calls
through Gatehouse (one gateway worker under uvicorn, key auth and usage recording on),
then the same with budgets and rate limits on (database counters, and Redis when
it answers at BENCH_REDIS_URL, default redis://127.0.0.1:6379/15), and the
admission step's own cost (`bench/admission.py`).

    make bench                      # the full run (about three minutes)
    make bench BENCH_ARGS="--quick" # fewer requests
    make bench BENCH_ARGS="--no-budgets" # skip the budget runs
    make bench BENCH_ARGS="--guard-off"  # also the plain cases with the guard policy all off

The simulator runs in its own process with zero added latency; the load
generator (aiohttp) runs in this process. CPU time per request is read from
/proc for the gateway process only; peak memory is its VmHWM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "var" / "bench"
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
REDIS_PREFIX = "gh-bench:"
BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "Say hello in five words."}], "max_tokens": 16}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_http(url: str, timeout: float = 30) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - loopback only
            return
        except urllib.error.HTTPError:
            return  # it answers: up
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def uvicorn(app: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(uvicorn_command(app, port, PY), cwd=ROOT, env=env)


def uvicorn_command(app: str, port: int, python: str) -> list[str]:
    """One worker under uvicorn with uvloop and httptools, as the bench serves the gateway."""
    return [
        python,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def prepare(env: dict[str, str], sim_url: str) -> str:
    """A fresh bench database with one organization, a key and a deployment."""
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    script = f"""
from console import services as c
from providers import services as p
owner = c.user_create(username="bench", password="bench-pass-123")
org = c.organization_create(name="Bench", owner=owner)
prov = p.provider_create(name="sim", kind="openai", base_url="{sim_url}/openai/v1", secret="x")
card, _ = p.model_card_upsert(name="bench-model", vendor="bench", input_price="1", output_price="2",
                              capabilities=["chat", "streaming"])
p.deployment_create(model=card, provider=prov, name="bench@sim", upstream_model="gpt-4o-mini")
from budgets import services as b
capped = c.organization_create(name="Bench Budgets", owner=owner)
team = c.team_create(organization=capped, name="bench team")
c.team_member_add(team=team, user=owner)
capped_key = c.api_key_create(organization=capped, name="bench capped", team=team, user=owner)
for scope, ref in (("organization", capped.id), ("team", team.id), ("user", owner.id), ("key", capped_key.key.id)):
    b.budget_create(organization=capped, scope=scope, scope_id=ref, amount="1000000", period="monthly")
    if scope != "organization":
        b.rate_limit_set(organization=capped, scope=scope, scope_id=ref, rpm=10000000, tpm=1000000000)
from routing import services as r
from routing.policy.document import policy_empty
routed = c.organization_create(name="Bench Routing", owner=owner)
doc = policy_empty()
for i in range(5):
    routed_card, _ = p.model_card_upsert(name=f"route-model-{{i}}", vendor="bench", input_price="1", output_price="2",
                                         capabilities=["chat", "streaming"])
    p.deployment_create(model=routed_card, provider=prov, name=f"route-{{i}}@sim", upstream_model="gpt-4o-mini")
doc["routes"] = [{{"name": "fast", "strategy": "weighted",
                  "targets": [{{"model": f"route-model-{{i}}", "weight": i + 1}} for i in range(5)]}}]
doc["rules"] = [{{"name": f"rule {{i}}", "route": "fast", "keywords": [f"keyword{{i}}", f"other{{i}}"],
                  "workflows": [f"workflow-{{i}}"] if i % 3 == 0 else []}} for i in range(20)]
r.policy_propose(organization=routed, actor=owner, document=doc, bypass_approval=True)
from guardrails import services as g
from guardrails.detectors import BUILTIN_ENTITIES
unguarded = c.organization_create(name="Bench Guard Off", owner=owner)
g.policy_set(organization=unguarded, document={{
    "pii": {{"*": {{entity: "off" for entity in BUILTIN_ENTITIES}}}},
    "output": {{"secrets": "off", "new_pii": "off", "deny": []}},
    "injection": {{"action": "off", "indirect_action": "off"}},
}})
print(c.api_key_create(organization=unguarded, name="bench guard off").secret)
print(c.api_key_create(organization=routed, name="bench routed").secret)
print(capped_key.secret)
print(c.api_key_create(organization=org, name="bench").secret)
"""
    out = subprocess.run(
        [PY, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    lines = out.stdout.strip().splitlines()
    return lines[-1], lines[-2], lines[-3], lines[-4]


def redis_url() -> str | None:
    """BENCH_REDIS_URL (default redis://127.0.0.1:6379/15) when a Redis answers there."""
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        for key in client.scan_iter(match=REDIS_PREFIX + "*", count=1000):
            client.delete(key)
        client.close()
        return url
    except Exception:  # noqa: BLE001 - any failure means: no Redis for the bench
        return None


def admission_cost(env: dict[str, str], store: str, n: int) -> dict:
    out = subprocess.run(
        [PY, "bench/admission.py", "--store", store, "--requests", str(n)],
        cwd=ROOT,
        env=env,  # noqa: S603
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@dataclass
class Result:
    name: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    ttfb: list[float]
    errors: int
    cpu_ms_per_req: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, values: list[float], q: float) -> float:
        values = sorted(values)
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


async def load(
    url: str, key: str, *, concurrency: int, total: int, stream: bool, model: str = "bench-model"
) -> tuple[float, list, list, int]:
    body = orjson.dumps({**BODY, "model": model, "stream": True} if stream else {**BODY, "model": model})
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    latencies: list[float] = []
    ttfb: list[float] = []
    errors = 0
    remaining = total
    connector = aiohttp.TCPConnector(limit=concurrency * 2, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    if stream:
                        first = None
                        async for _ in response.content.iter_any():
                            if first is None:
                                first = time.perf_counter()
                        ttfb.append(first - started)
                    else:
                        await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - began, latencies, ttfb, errors


def run_case(
    name: str,
    url: str,
    key: str,
    *,
    concurrency: int,
    total: int,
    stream: bool,
    pid: int | None,
    model: str = "bench-model",
) -> Result:
    kwargs = {"concurrency": concurrency, "stream": stream, "model": model}
    asyncio.run(load(url, key, total=max(50, total // 10), **kwargs))  # warm-up
    cpu_before = cpu_seconds(pid) if pid else 0.0
    seconds, latencies, ttfb, errors = asyncio.run(load(url, key, total=total, **kwargs))
    result = Result(name, concurrency, total, seconds, latencies, ttfb, errors)
    if pid:
        result.cpu_ms_per_req = (cpu_seconds(pid) - cpu_before) * 1000 / total
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests per case")
    parser.add_argument("--no-stock", action="store_true", help="skip the stock-adrf-dispatch comparison")
    parser.add_argument("--no-budgets", action="store_true", help="skip the runs with budgets and rate limits on")
    parser.add_argument("--no-routing", action="store_true", help="skip the run through a route with rules")
    parser.add_argument("--only", choices=["routing"], help="run only the plain and routed cases")
    parser.add_argument(
        "--guard-off",
        action="store_true",
        help="also run the plain cases for an organization whose guard policy is all off "
        "(what the data plane costs without the guard)",
    )
    args = parser.parse_args()
    n = {1: 3000, 16: 8000, 64: 8000, "stream": 3000}
    if args.quick:
        n = {1: 600, 16: 2000, 64: 2000, "stream": 600}

    sim_port, gw_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = {
        **os.environ,
        "GATEHOUSE_ENV": "development",
        "GATEHOUSE_DEBUG": "false",  # as in production: no per-query SQL capture
        "GATEHOUSE_DATA_DIR": str(DATA),
        "GATEHOUSE_SIMULATOR": "false",
        "GATEHOUSE_SIM_LATENCY_SCALE": "0",
        "GATEHOUSE_LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    key, capped_key, routed_key, unguarded_key = prepare(env, sim_url)
    redis = None if args.no_budgets else redis_url()
    modes: list[tuple[str, bool, dict[str, str], str]] = [("async dispatch", False, {}, key)]
    if args.guard_off:
        modes.append(("guard off", False, {}, unguarded_key))
    if not args.no_routing:
        modes.append(("route of 5 deployments, 20 rules", False, {}, routed_key))
    if args.only == "routing":
        args.no_stock = args.no_budgets = True
    if not args.no_stock:
        modes.append(("stock adrf dispatch", True, {}, key))
    if not args.no_budgets:
        modes.append(("budgets+limits, database", False, {}, capped_key))
        if redis:
            # Redis also carries the routing state shared by every process: the Redis budget
            # case is compared with this one, so the difference is what budgets add.
            modes.append(
                ("no budgets, Redis", False, {"REDIS_URL": redis, "GATEHOUSE_REDIS_PREFIX": REDIS_PREFIX}, key)
            )
            modes.append(
                (
                    "budgets+limits, Redis",
                    False,
                    {"REDIS_URL": redis, "GATEHOUSE_REDIS_PREFIX": REDIS_PREFIX},
                    capped_key,
                )
            )
    sim = uvicorn("providers.simulator.app:app", sim_port, env)
    procs = [sim]
    try:
        wait_http(f"{sim_url}/_health")
        direct = f"{sim_url}/openai/v1/chat/completions"
        rows: list[tuple[str, Result, Result]] = []
        memory: dict[str, float] = {}
        for mode, stock, extra_env, mode_key in modes:
            gw_env = {**env, **extra_env, "GATEHOUSE_STOCK_DRF_DISPATCH": "true" if stock else "false"}
            gateway = uvicorn("gatehouse.asgi:application", gw_port, gw_env)
            procs.append(gateway)
            wait_http(f"http://127.0.0.1:{gw_port}/v1/models")
            through = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
            cases = [
                (1, False, n[1]),
                (16, False, n[16]),
                (64, False, n[64]),
                (1, True, n["stream"]),
                (16, True, n["stream"]),
            ]
            if stock:
                cases = [(1, False, n[1]), (16, False, n[16])]
            elif mode_key not in (key, unguarded_key) or mode.endswith("Redis"):
                cases = [(1, False, n[1]), (16, False, n[16]), (16, True, n["stream"])]
            model = "fast" if mode_key == routed_key else "bench-model"
            for concurrency, stream, total in cases:
                label = f"{'stream' if stream else 'non-stream'} c={concurrency}"
                d = run_case(label, direct, "x", concurrency=concurrency, total=total, stream=stream, pid=None)
                g = run_case(
                    label,
                    through,
                    mode_key,
                    concurrency=concurrency,
                    total=total,
                    stream=stream,
                    pid=gateway.pid,
                    model=model,
                )
                rows.append((f"{mode}: {label}", d, g))
                print(
                    f"  {mode:20} {label:16} direct {d.rps:7.0f} req/s  gateway {g.rps:7.0f} req/s  "
                    f"p50 +{g.pct(g.latencies, 0.5) - d.pct(d.latencies, 0.5):.2f} ms  "
                    f"cpu {g.cpu_ms_per_req:.2f} ms/req  errors {g.errors}",
                    flush=True,
                )
            memory[mode] = peak_rss_mb(gateway.pid)
            gateway.terminate()
            gateway.wait(timeout=20)
            procs.remove(gateway)
        admission = []
        if not args.no_budgets:
            admission.append(admission_cost(env, "db", n[1]))
            if redis:
                admission.append(
                    admission_cost({**env, "REDIS_URL": redis, "GATEHOUSE_REDIS_PREFIX": REDIS_PREFIX}, "redis", n[1])
                )
            for row in admission:
                print(
                    f"  admission ({row['store']}): p50 {row['admit_p50_us']} us, p99 {row['admit_p99_us']} us",
                    flush=True,
                )
        report = render(rows, memory, admission)
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "latest.md").write_text(report)
        sys.stdout.write("\n" + report)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


def render(rows, memory, admission=()) -> str:
    lines = [
        "| case | direct req/s | gateway req/s | direct p50 ms | gateway p50 ms | added p50 ms | "
        "direct p99 ms | gateway p99 ms | gateway CPU ms/req | TTFB p50 direct / gateway ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, d, g in rows:
        ttfb = f"{d.pct(d.ttfb, 0.5):.2f} / {g.pct(g.ttfb, 0.5):.2f}" if g.ttfb else ""
        lines.append(
            f"| {name} | {d.rps:.0f} | {g.rps:.0f} | {d.pct(d.latencies, 0.5):.2f} | {g.pct(g.latencies, 0.5):.2f} | "
            f"{g.pct(g.latencies, 0.5) - d.pct(d.latencies, 0.5):+.2f} | {d.pct(d.latencies, 0.99):.2f} | "
            f"{g.pct(g.latencies, 0.99):.2f} | {g.cpu_ms_per_req:.2f} | {ttfb} | {g.errors} |"
        )
    base = {name.split(": ", 1)[1]: g for name, _, g in rows if name.startswith("async dispatch: ")}
    base_redis = {name.split(": ", 1)[1]: g for name, _, g in rows if name.startswith("no budgets, Redis: ")}
    extra = []
    for name, _, g in rows:
        if not name.startswith("budgets+limits"):
            continue
        against = base_redis if name.startswith("budgets+limits, Redis") and base_redis else base
        if name.split(": ", 1)[1] in against:
            extra.append((name, g, against[name.split(": ", 1)[1]]))
    if extra:
        lines += [
            "",
            "Budgets and rate limits on (budgets on organization, team, user and key; limits on key, user "
            "and team), compared with the same case without (the Redis case with `no budgets, Redis`, "
            "where Redis already holds the shared routing state):",
            "",
            "| case | added p50 ms | added p99 ms | added CPU ms/req |",
            "|---|---:|---:|---:|",
        ]
        for name, g, b in extra:
            lines.append(
                f"| {name} | {g.pct(g.latencies, 0.5) - b.pct(b.latencies, 0.5):+.2f} | "
                f"{g.pct(g.latencies, 0.99) - b.pct(b.latencies, 0.99):+.2f} | "
                f"{g.cpu_ms_per_req - b.cpu_ms_per_req:+.2f} |"
            )
    if admission:
        lines += [
            "",
            "The admission step's own cost (`bench/admission.py`: admit on 4 budgets + 3 rate limits, "
            "sequential, in-process):",
            "",
            "| store | admit p50 us | admit p90 us | admit p99 us | settlement per request p50 us |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in admission:
            lines.append(
                f"| {row['store']} | {row['admit_p50_us']} | {row['admit_p90_us']} | {row['admit_p99_us']} | "
                f"{row['settle_per_request_p50_us']} |"
            )
    lines.append("")
    for mode, mb in memory.items():
        lines.append(f"Gateway worker peak memory ({mode}): {mb:.0f} MB")
    lines.append(
        f"Machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; one gateway worker (uvicorn, uvloop)."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
