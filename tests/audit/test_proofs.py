"""Proofs read from stored subtree hashes equal the proofs of the whole tree in memory."""

from __future__ import annotations

import pytest

from audit.merkle import consistency_path, inclusion_path, memory_source
from audit.models import Leaf
from audit.selectors import LedgerCorrupt, compact_range_at, consistency_proof, inclusion_proof, root_at
from audit.verifier import gatehouse_verify as gv
from tests.audit.conftest import attacker_sql, seal

pytestmark = pytest.mark.django_db


def test_stored_proofs_equal_in_memory_proofs(org):
    log, _ = seal(org.id, 700, rounds=7)
    hashes = [bytes(h) for h in Leaf.objects.filter(log=log).order_by("index").values_list("leaf_hash", flat=True)]
    memory = memory_source(hashes)
    sizes = list(log.checkpoints.order_by("size").values_list("size", flat=True))
    for size in [*sizes, 256, 257, 511, 512, 513]:
        assert root_at(log, size) == gv.tree_root(hashes[:size])
        assert compact_range_at(log, size).root() == gv.tree_root(hashes[:size])
        for index in {0, 1, size // 2, size - 2, size - 1} - {-1}:
            assert inclusion_proof(log, index=index, size=size) == inclusion_path(memory, index, size)
    for size1 in [1, 16, 255, 256, 300]:
        assert consistency_proof(log, size1=size1, size2=log.size) == consistency_path(memory, size1, log.size)


def test_a_missing_stored_hash_is_reported_not_papered_over(org):
    log, _ = seal(org.id, 300, rounds=1)
    attacker_sql('DELETE FROM audit_leaf WHERE log_id = %s AND "index" = 3', params=[log.id])
    with pytest.raises(LedgerCorrupt):
        inclusion_proof(log, index=1, size=log.size)
