"""How long ranking a knowledge base's chunks takes (cosine + keywords, in memory).

.venv/bin/python bench/workspace_retrieval.py [chunks] [dimensions]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
    import django

    django.setup()
    from workspace.knowledge import chunk_scores

    chunks = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    dims = int(sys.argv[2]) if len(sys.argv) > 2 else 1536
    rng = np.random.default_rng(7)
    vectors = list(rng.standard_normal((chunks, dims), dtype="f4"))
    words = ["expense", "parking", "travel", "permit", "security", "report", "office", "budget"]
    texts = [" ".join(rng.choice(words, 120)) for _ in range(chunks)]
    query = rng.standard_normal(dims, dtype="f4").tolist()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        chunk_scores(texts, vectors, query="parking permit for the office", vector=query)
        runs.append(time.perf_counter() - start)
    print(f"{chunks} chunks x {dims} dims: median {sorted(runs)[2] * 1000:.1f} ms per ranking")


if __name__ == "__main__":
    main()
