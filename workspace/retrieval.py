"""Retrieval over a knowledge base: brute-force cosine with numpy plus a keyword score from
an inverted index, merged, over an index held in memory per knowledge base.

The index of a knowledge base (a float32 matrix of its ready chunks' unit vectors and an
inverted index word -> rows) is built once per process and kept in `RetrievalCache`, owned
by the workspace's AppConfig. `KnowledgeBase.index_version` changes whenever the set of
ready chunks changes (a document ready or deleted), in any process; each search reads it
(one indexed row) and rebuilds when it moved. Built on plain columns, so it works the same
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from workspace.models import Chunk, DocumentStatus, KnowledgeBase

WORD = re.compile(r"[a-z0-9]{3,}")
_STOP_WORDS = (
    "the and for are but not you all any can had her was one our out has have with this that from they "
    "will would there their what about which when make like into than then them these some could other "
    "been more also how its who did does may your were each she him his"
)
STOP = frozenset(_STOP_WORDS.split(" "))
COSINE_WEIGHT = 0.6  # the rest is the keyword score


def words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOP}


@dataclass(frozen=True, slots=True)
class Hit:
    chunk_id: int
    document: str
    ordinal: int
    text: str
    score: float


class KnowledgeIndex:
    """One knowledge base's ready chunks, searchable in memory (read-only once built)."""

    def __init__(self, *, version: str, chunk_ids: np.ndarray, matrix: np.ndarray | None, postings: dict) -> None:
        self.version = version
        self.chunk_ids = chunk_ids
        self.matrix = matrix  # (n, dims) unit rows, or None when no chunk has a vector
        self.postings = postings  # word -> int32 rows containing it

    def __len__(self) -> int:
        return len(self.chunk_ids)

    @classmethod
    def build(cls, *, version: str, rows: list[tuple[int, str, bytes]]) -> KnowledgeIndex:
        """From (chunk id, text, vector bytes) rows; vectors of another size count as none."""
        chunk_ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        lists: dict[str, list[int]] = {}
        for row, (_, text, _) in enumerate(rows):
            for word in words(text):
                lists.setdefault(word, []).append(row)
        postings = {word: np.asarray(found, dtype=np.int32) for word, found in lists.items()}
        sizes: dict[int, int] = {}
        for _, _, data in rows:
            if data:
                sizes[len(data)] = sizes.get(len(data), 0) + 1
        matrix = None
        if sizes:
            width = max(sizes, key=sizes.get)
            matrix = np.zeros((len(rows), width // 4), dtype=np.float32)
            for row, (_, _, data) in enumerate(rows):
                if data and len(data) == width:
                    matrix[row] = np.frombuffer(bytes(data), dtype="<f4")
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            np.divide(matrix, norms, out=matrix, where=norms > 0)
        return cls(version=version, chunk_ids=chunk_ids, matrix=matrix, postings=postings)

    def scores(self, *, query: str, vector: list[float] | None) -> np.ndarray:
        """Each chunk's score: COSINE_WEIGHT x cosine (when the query has a vector of the
        index's size) + the rest x the share of the query's words the chunk holds."""
        n = len(self.chunk_ids)
        asked = words(query)
        keyword = np.zeros(n, dtype=np.float32)
        for word in asked:
            rows = self.postings.get(word)
            if rows is not None:
                keyword[rows] += 1.0
        if asked:
            keyword /= len(asked)
        if vector is None or self.matrix is None or len(vector) != self.matrix.shape[1]:
            return keyword
        q = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(q))
        if norm == 0:
            return keyword
        cosine = self.matrix @ (q / norm)
        cosine *= COSINE_WEIGHT
        cosine += (1 - COSINE_WEIGHT) * keyword
        return cosine

    def best(self, *, query: str, vector: list[float] | None, limit: int) -> list[tuple[int, float]]:
        """(chunk id, score) of the `limit` best chunks with a score above zero, best first."""
        if not len(self.chunk_ids) or limit <= 0:
            return []
        score = self.scores(query=query, vector=vector)
        top = np.argpartition(-score, limit)[:limit] if limit < len(score) else np.arange(len(score))
        top = top[np.argsort(-score[top], kind="stable")]
        return [(int(self.chunk_ids[i]), float(score[i])) for i in top if score[i] > 0]


class RetrievalCache:
    """Indexes of the most recently searched knowledge bases (at most `capacity`), per process."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._items: OrderedDict[int, KnowledgeIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._building = threading.Lock()

    def get(self, knowledge_base_id: int, version: str) -> KnowledgeIndex | None:
        with self._lock:
            index = self._items.get(knowledge_base_id)
            if index is None or index.version != version:
                return None
            self._items.move_to_end(knowledge_base_id)
            return index

    def put(self, knowledge_base_id: int, index: KnowledgeIndex) -> None:
        with self._lock:
            self._items[knowledge_base_id] = index
            self._items.move_to_end(knowledge_base_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def discard(self, knowledge_base_id: int) -> None:
        with self._lock:
            self._items.pop(knowledge_base_id, None)

    def index(self, knowledge_base_id: int) -> KnowledgeIndex | None:
        """The current index of the knowledge base (built when missing or out of date)."""
        version = KnowledgeBase.objects.filter(pk=knowledge_base_id).values_list("index_version", flat=True).first()
        if version is None:
            self.discard(knowledge_base_id)
            return None
        found = self.get(knowledge_base_id, version)
        if found is not None:
            return found
        with self._building:  # one build at a time; a second caller finds the first one's result
            found = self.get(knowledge_base_id, version)
            if found is not None:
                return found
            rows = list(
                Chunk.objects.filter(knowledge_base_id=knowledge_base_id, document__status=DocumentStatus.READY)
                .order_by("id")
                .values_list("id", "text", "vector")
                .iterator(chunk_size=2000)
            )
            index = KnowledgeIndex.build(version=version, rows=rows)
            self.put(knowledge_base_id, index)
            return index


def retrieval_cache() -> RetrievalCache:
    from django.apps import apps

    return apps.get_app_config("workspace").retrieval_cache


def knowledge_search(*, knowledge_base_id: int, query: str, vector: list[float] | None, limit: int) -> list[Hit]:
    """The best chunks for `query` (blocking: run in a thread): cosine similarity of the
    embeddings, when the query could be embedded, merged with the keyword score."""
    index = retrieval_cache().index(knowledge_base_id)
    if index is None:
        return []
    best = index.best(query=query, vector=vector, limit=limit)
    if not best:
        return []
    found = {
        c.pk: c
        for c in Chunk.objects.filter(pk__in=[chunk_id for chunk_id, _ in best])
        .select_related("document")
        .only("id", "ordinal", "text", "document__name")
    }
    return [
        Hit(chunk_id=i, document=found[i].document.name, ordinal=found[i].ordinal, text=found[i].text, score=s)
        for i, s in best
        if i in found
    ]
