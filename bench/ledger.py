"""The transparency ledger: hot-path cost, write, seal and verify rates, proof sizes and times.

    .venv/bin/python bench/ledger.py                  # 100,000 leaves, about a minute
    .venv/bin/python bench/ledger.py --quick          # 20,000 leaves (what `make bench` runs)
    .venv/bin/python bench/ledger.py --size 1000000   # proofs at 10^6 leaves (several minutes)

A fresh SQLite database under var/bench-ledger. The hot path is what a request pays: build
the frozen `RequestLeaf` and append it to the `LedgerBuffer`. The writer canonicalizes and
bulk-inserts (the usage writer's thread); the sealer assigns indexes, hashes the tree,
stores proof nodes and signs one ML-DSA-65 checkpoint per batch; the verifier recomputes
every leaf hash and root from an export, as an auditor does.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "var" / "bench-ledger"
shutil.rmtree(DATA, ignore_errors=True)
DATA.mkdir(parents=True)
os.environ["DJANGO_SETTINGS_MODULE"] = "gatehouse.settings"
os.environ["GATEHOUSE_DATA_DIR"] = str(DATA)
os.environ["DATABASE_URL"] = f"sqlite:///{DATA / 'ledger.sqlite3'}"
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from audit.facade import LedgerBuffer, RequestLeaf, body_sha256, ledger_write  # noqa: E402
from audit.selectors import consistency_proof, inclusion_proof, log_for  # noqa: E402
from audit.services import export_build, ledger_seal  # noqa: E402
from audit.signing import Signer, public_keys_document, signing_key_current  # noqa: E402
from audit.verifier import gatehouse_verify as gv  # noqa: E402

ORG = 1


def leaf(i: int) -> RequestLeaf:
    return RequestLeaf(
        request_id=f"req-{uuid.uuid4().hex}",
        at=datetime.now(UTC),
        organization_id=ORG,
        key_id=7,
        key_prefix="gh-abc123",
        user_id=3,
        model_requested="gpt-4o-mini",
        model_used="gpt-4o-mini",
        deployment="gpt-4o-mini@openai",
        status=200,
        input_tokens=100 + i % 50,
        output_tokens=200,
        cost=Decimal("0.000123"),
        data_class="internal",
        request_sha256="a" * 64,
        response_sha256="b" * 64,
    )


class timed:
    """Adds wall and CPU seconds of a block to acc = [wall, cpu]."""

    def __init__(self, acc: list[float]) -> None:
        self.acc = acc

    def __enter__(self):
        self.t, self.c = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self.acc[0] += time.perf_counter() - self.t
        self.acc[1] += time.process_time() - self.c


def rates(n: int, acc: list[float]) -> str:
    return f"{n / acc[0]:,.0f} leaves/s wall, {n / acc[1]:,.0f} leaves/s of CPU"


def hot_path(n: int) -> float:
    """µs per request: build the leaf and append it to the buffer."""
    buffer = LedgerBuffer()
    digest = body_sha256(b"x" * 2048)
    now = datetime.now(UTC)
    cost = Decimal("0.000123")
    start = time.perf_counter()
    for i in range(n):
        buffer.append_request(
            RequestLeaf(
                request_id="req-0",
                at=now,
                organization_id=ORG,
                key_id=7,
                key_prefix="gh-abc123",
                user_id=3,
                model_requested="gpt-4o-mini",
                model_used="gpt-4o-mini",
                deployment="d",
                status=200,
                input_tokens=i,
                output_tokens=200,
                cost=cost,
                data_class="internal",
                request_sha256=digest,
                response_sha256=digest,
            )
        )
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    size = 20_000 if args.quick else args.size
    call_command("migrate", verbosity=0)
    signer = Signer(signing_key_current())

    us = min(hot_path(100_000) for _ in range(3))
    print(f"hot path (build RequestLeaf + LedgerBuffer.append_request): {us:.2f} µs per request")

    batch = 5_000
    write = [0.0, 0.0]
    sealing = [0.0, 0.0]
    done = 0
    while done < size:
        n = min(batch, size - done)
        leaves = [leaf(done + i) for i in range(n)]
        with timed(write):
            ledger_write(leaves)
        with timed(sealing):
            ledger_seal(signer=signer)
        done += n
    log = log_for(ORG)
    print(f"write (canonical JSON + bulk insert, writer thread): {rates(size, write)}")
    print(f"seal (index, tree, proof nodes, one ML-DSA-65 checkpoint per {batch}): {rates(size, sealing)}")

    exporting = [0.0, 0.0]
    with timed(exporting):
        export = export_build(log=log)
    keys, witnesses = gv.keys_load(public_keys_document())
    verifying = [0.0, 0.0]
    with timed(verifying):
        report = gv.export_verify(export, keys, witnesses)
    assert report.ok, report.problems
    print(f"export: {rates(size, exporting)}")
    print(f"verify (offline verifier, {report.checkpoints} checkpoints): {rates(report.leaves, verifying)}")

    rng = random.Random(1)
    n = log.size
    times, lengths = [], []
    for _ in range(50):
        index = rng.randrange(n)
        t = time.perf_counter()
        proof = inclusion_proof(log, index=index, size=n)
        times.append(time.perf_counter() - t)
        lengths.append(len(proof))
    print(
        f"inclusion proof at {n:,} leaves: {max(lengths)} hashes ({max(lengths) * 32} B), "
        f"median {statistics.median(times) * 1000:.2f} ms, max {max(times) * 1000:.2f} ms"
    )
    sizes = list(log.checkpoints.order_by("size").values_list("size", flat=True))
    times, lengths = [], []
    for _ in range(20):
        old = rng.choice(sizes[:-1]) if len(sizes) > 1 else 1
        t = time.perf_counter()
        proof = consistency_proof(log, size1=old, size2=n)
        times.append(time.perf_counter() - t)
        lengths.append(len(proof))
    print(
        f"consistency proof to {n:,} leaves: up to {max(lengths)} hashes ({max(lengths) * 32} B), "
        f"median {statistics.median(times) * 1000:.2f} ms"
    )
    if us > 20:
        print("WARNING: the hot path costs more than 20 µs per request")


if __name__ == "__main__":
    main()
