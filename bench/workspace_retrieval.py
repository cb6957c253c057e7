"""Retrieval over a large knowledge base: how long one search takes, end to end.

    PYTHONPATH=. .venv/bin/python bench/workspace_retrieval.py [--chunks 100000] [--dims 1536] [--queries 200]

Builds a knowledge base of `--chunks` chunks (about 120 words of Zipf-distributed
vocabulary each, random `--dims`-dimensional vectors, spread over documents of 1,000
chunks) in a fresh SQLite database in a temporary folder (or in the database that
DATABASE_URL names, in an organization of its own that is deleted afterwards), then times
`workspace.retrieval.knowledge_search` — the call a turn makes: the version check, cosine
over the in-memory matrix, the keyword score from the inverted index, the merge and the
read of the best chunks — for `--queries` questions with their vectors. The first search
builds the index (reported separately); the others use it. Prints p50, p95 and the worst,
the CPU time per search (less sensitive to other work on the machine) and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid

import numpy as np

VOCABULARY = 20_000
WORDS_PER_CHUNK = 120
CHUNKS_PER_DOCUMENT = 1_000


def _vocabulary(rng: np.random.Generator) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return np.array(["".join(rng.choice(letters, int(rng.integers(4, 10)))) for _ in range(VOCABULARY)])


def _texts(rng: np.random.Generator, vocabulary: np.ndarray, count: int) -> list[str]:
    picks = np.minimum(rng.zipf(1.3, size=(count, WORDS_PER_CHUNK)), VOCABULARY) - 1
    return [" ".join(vocabulary[row]) for row in picks]


def build(*, chunks: int, dims: int, rng: np.random.Generator):
    from django.db import transaction

    from console.models import Organization
    from workspace.models import Chunk, Document, DocumentStatus, KnowledgeBase

    vocabulary = _vocabulary(rng)
    org = Organization.objects.create(name="retrieval bench", slug=f"retrieval-bench-{uuid.uuid4().hex[:8]}")
    base = KnowledgeBase.objects.create(organization=org, name="bench")
    started = time.perf_counter()
    for first in range(0, chunks, CHUNKS_PER_DOCUMENT):
        count = min(CHUNKS_PER_DOCUMENT, chunks - first)
        texts = _texts(rng, vocabulary, count)
        vectors = rng.standard_normal((count, dims), dtype=np.float32).astype("<f4")
        with transaction.atomic():
            document = Document.objects.create(
                knowledge_base=base,
                name=f"doc-{first // CHUNKS_PER_DOCUMENT}.md",
                status=DocumentStatus.READY,
                chunk_count=count,
                chunks_done=count,
            )
            Chunk.objects.bulk_create(
                (
                    Chunk(document=document, knowledge_base=base, ordinal=i, text=texts[i], vector=vectors[i].tobytes())
                    for i in range(count)
                ),
                batch_size=500,
            )
    print(f"stored {chunks} chunks x {dims} dims in {time.perf_counter() - started:.1f} s", flush=True)
    return org, base, vocabulary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=1536)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    folder = None
    if "DATABASE_URL" not in os.environ:
        folder = tempfile.TemporaryDirectory(prefix="gatehouse-retrieval-bench-")
        os.environ["GATEHOUSE_DATA_DIR"] = folder.name
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from workspace.conf import workspace_conf
    from workspace.retrieval import knowledge_search

    if folder is not None:
        call_command("migrate", verbosity=0)
    rng = np.random.default_rng(7)
    org, base, vocabulary = build(chunks=args.chunks, dims=args.dims, rng=rng)
    limit = workspace_conf().retrieve_chunks
    try:
        questions = [
            (" ".join(rng.choice(vocabulary[:2000], 6)), rng.standard_normal(args.dims).tolist())
            for _ in range(args.queries + 1)
        ]
        started = time.perf_counter()
        knowledge_search(knowledge_base_id=base.pk, query=questions[0][0], vector=questions[0][1], limit=limit)
        print(f"first search (builds the index): {(time.perf_counter() - started) * 1000:.0f} ms", flush=True)
        times = []
        cpu = []
        found = 0
        for query, vector in questions[1:]:
            started, started_cpu = time.perf_counter(), time.process_time()
            hits = knowledge_search(knowledge_base_id=base.pk, query=query, vector=vector, limit=limit)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            found += len(hits)
        times.sort()
        p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
        print(
            f"{args.chunks} chunks x {args.dims} dims on {connection.vendor}, {len(times)} searches "
            f"({found / len(times):.1f} hits each): p50 {statistics.median(times):.1f} ms, "
            f"p95 {p95:.1f} ms, max {times[-1]:.1f} ms; CPU per search p50 {statistics.median(cpu):.1f} ms "
            f"(all threads); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
    finally:
        org.delete()
        if folder is not None:
            connection.close()
            folder.cleanup()


if __name__ == "__main__":
    sys.exit(main())
