"""Retrieval: cosine over each knowledge base's in-memory matrix merged with a keyword score
from its inverted index; the index is rebuilt when the knowledge base's chunks change."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def _unit(*values: float) -> bytes:
    vector = np.asarray(values, dtype="<f4")
    return (vector / np.linalg.norm(vector)).astype("<f4").tobytes()


def test_the_index_merges_cosine_and_keywords_and_ranks_best_first():
    from workspace.retrieval import KnowledgeIndex

    rows = [
        (10, "Parking permits for the Lyon office", _unit(1, 0, 0)),
        (11, "Expense reports are due monthly", _unit(0, 1, 0)),
        (12, "VPN certificates rotate", _unit(0, 0, 1)),
        (13, "Parking near the office", b""),  # not embedded yet: keyword score only
    ]
    index = KnowledgeIndex.build(version="v1", rows=rows)

    # Keywords alone (the question could not be embedded): the two chunks about parking.
    assert [chunk for chunk, _ in index.best(query="parking office", vector=None, limit=4)] == [10, 13]
    # With a vector close to the expense chunk, cosine lifts it above keyword-only matches.
    best = index.best(query="parking", vector=[0.1, 1.0, 0.0], limit=2)
    assert [chunk for chunk, _ in best] == [11, 10]
    assert best[0][1] == pytest.approx(0.6 * 0.995, abs=1e-3)
    # A vector of another size is ignored rather than failing.
    assert [c for c, _ in index.best(query="vpn", vector=[1.0, 2.0], limit=4)] == [12]
    # Stop words score nothing.
    assert index.best(query="the for and", vector=None, limit=4) == []


def test_a_search_uses_the_cached_index_until_the_knowledge_base_changes(demo, member):
    from workspace import knowledge
    from workspace.models import Chunk, Document, DocumentStatus
    from workspace.retrieval import knowledge_search, retrieval_cache

    base = knowledge.knowledge_base_create(organization=demo.org, actor=member, name="Facts")
    first = knowledge.document_create(knowledge_base=base, actor=member, name="a.md", data=b"Parking is free.")
    Chunk.objects.filter(document=first).update(vector=_unit(1, 0))
    knowledge._document_ready(first.pk)

    hits = knowledge_search(knowledge_base_id=base.pk, query="parking", vector=[1.0, 0.0], limit=3)
    assert [(h.document, h.ordinal) for h in hits] == [("a.md", 0)]
    cached = retrieval_cache().index(base.pk)
    assert retrieval_cache().index(base.pk) is cached  # no rebuild while nothing changed

    # A second document becoming ready moves the version: the next search sees it.
    second = knowledge.document_create(knowledge_base=base, actor=member, name="b.md", data=b"Parking costs 2 EUR.")
    assert Document.objects.get(pk=second.pk).status == DocumentStatus.PENDING
    assert len(knowledge_search(knowledge_base_id=base.pk, query="parking", vector=None, limit=3)) == 1
    Chunk.objects.filter(document=second).update(vector=_unit(0, 1))
    knowledge._document_ready(second.pk)
    hits = knowledge_search(knowledge_base_id=base.pk, query="parking", vector=[0.0, 1.0], limit=3)
    assert [h.document for h in hits] == ["b.md", "a.md"]
    assert retrieval_cache().index(base.pk) is not cached

    # Deleting a document takes its chunks out of the next search.
    knowledge.document_delete(document=Document.objects.get(pk=second.pk), actor=member)
    assert [h.document for h in knowledge_search(knowledge_base_id=base.pk, query="parking", vector=None, limit=3)] == [
        "a.md"
    ]
