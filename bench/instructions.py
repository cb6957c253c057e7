"""Instructions per request of one gateway worker, counted by valgrind's callgrind.

    .venv/bin/python bench/instructions.py [TREE] [--stream] [--guard-off] [--requests 300]

CPU time on a shared machine drifts between runs; an instruction count does not (the
same binary, inputs and environment give the same count, whatever else the machine
does). The gateway worker of TREE (default: this one) runs under callgrind with its
bench database (prepared by that tree's `bench/run.py`); after 100 warm-up requests
the counters are zeroed, then REQUESTS requests at one at a time are counted over
every thread of the process. The kernel's share (system calls, switches) is not counted.
Needs valgrind (`apt-get install valgrind`); a run takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paired import tree_bench, tree_env  # noqa: E402
from run import uvicorn_command  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", type=Path, nargs="?", default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--stream", action="store_true", help="streamed requests (default: not streamed)")
    parser.add_argument("--guard-off", action="store_true", help="the organization whose guard is off")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    bench = tree_bench(args.tree.resolve())
    env = {**tree_env(bench), "PYTHONHASHSEED": "0"}
    sim_port, port = bench.free_port(), bench.free_port()
    keys = bench.prepare(env, f"http://127.0.0.1:{sim_port}")
    key = keys[3] if args.guard_off else keys[0]
    sim = bench.uvicorn("providers.simulator.app:app", sim_port, env)
    out = os.path.join(tempfile.mkdtemp(prefix="callgrind-"), "callgrind.out")
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        *uvicorn_command("gatehouse.asgi:application", port, sys.executable),
    ]
    gateway = subprocess.Popen(command, cwd=bench.ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        bench.wait_http(f"http://127.0.0.1:{sim_port}/_health")
        bench.wait_http(f"http://127.0.0.1:{port}/v1/models", timeout=300)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        asyncio.run(bench.load(url, key, concurrency=1, total=100, stream=args.stream))
        time.sleep(1)
        subprocess.run(["callgrind_control", "-z", str(gateway.pid)], check=True, capture_output=True)
        asyncio.run(bench.load(url, key, concurrency=1, total=args.requests, stream=args.stream))
        time.sleep(1)
        subprocess.run(["callgrind_control", "-d", str(gateway.pid)], check=True, capture_output=True)
        time.sleep(2)
        counted = 0
        for path in glob.glob(out + "*"):
            text = Path(path).read_text()
            found = re.search(r"^summary: (\d+)", text, re.MULTILINE)
            if found and "Trigger: dump" in text:
                counted += int(found.group(1))
        print(
            f"{args.tree}: {counted / args.requests / 1e6:.3f} million instructions per "
            f"{'streamed' if args.stream else 'non-streamed'} request "
            f"({'guard-off organization' if args.guard_off else 'plain organization'}, {args.requests} requests)"
        )
    finally:
        for process in (gateway, sim):
            process.terminate()
        for process in (gateway, sim):
            process.wait()


if __name__ == "__main__":
    main()
