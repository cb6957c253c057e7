"""RFC 9162 hashing, roots and proofs: the published vectors, and every size 1..N against a brute-force tree."""

from __future__ import annotations

import hashlib

import pytest

from audit.merkle import consistency_path, inclusion_path, memory_source, range_hash
from audit.verifier.gatehouse_verify import (
    CompactRange,
    canonical_json,
    largest_power_of_two_below,
    leaf_hash,
    leaf_is_canonical,
    node_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

# The Merkle tree test vectors of Certificate Transparency (RFC 6962 / RFC 9162 hashing).
VECTOR_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
N = 40


def brute_root(data: list[bytes]) -> bytes:
    """MTH of RFC 9162 section 2.1.1, written straight from the definition."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = largest_power_of_two_below(len(data))
    return hashlib.sha256(b"\x01" + brute_root(data[:k]) + brute_root(data[k:])).digest()


def test_the_published_vectors_give_the_published_roots():
    hashes = [leaf_hash(d) for d in VECTOR_LEAVES]
    assert tree_root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    for n, expected in enumerate(VECTOR_ROOTS, start=1):
        assert tree_root(hashes[:n]).hex() == expected
        assert brute_root(VECTOR_LEAVES[:n]).hex() == expected


def test_leaf_and_node_hashes_are_domain_separated():
    assert leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()


DATA = [f"leaf {i}".encode() for i in range(N)]
HASHES = [leaf_hash(d) for d in DATA]
SOURCE = memory_source(HASHES)


@pytest.mark.parametrize("size", range(1, N + 1))
def test_inclusion_proofs_verify_for_every_leaf_and_fail_for_another(size):
    root = brute_root(DATA[:size])
    assert range_hash(SOURCE, 0, size) == root
    for index in range(size):
        proof = inclusion_path(SOURCE, index, size)
        assert len(proof) <= size.bit_length()
        assert verify_inclusion(index, size, HASHES[index], proof, root)
        assert not verify_inclusion(index, size, leaf_hash(b"other"), proof, root)
        if size > 1:
            assert not verify_inclusion((index + 1) % size, size, HASHES[index], proof, root)


@pytest.mark.parametrize("size2", range(1, N + 1))
def test_consistency_proofs_verify_for_every_older_size_and_fail_for_a_fork(size2):
    root2 = brute_root(DATA[:size2])
    for size1 in range(0, size2 + 1):
        root1 = brute_root(DATA[:size1])
        proof = consistency_path(SOURCE, size1, size2)
        assert verify_consistency(size1, size2, root1, root2, proof), (size1, size2)
        if 0 < size1 < size2:
            forked = brute_root([*DATA[: size1 - 1], b"forked"])
            assert not verify_consistency(size1, size2, forked, root2, proof)


def test_compact_range_appends_to_the_same_roots_and_reports_completed_subtrees():
    tree = CompactRange()
    made = []
    for i, h in enumerate(HASHES):
        made.extend(tree.append(h))
        assert tree.root() == brute_root(DATA[: i + 1])
    assert (3, 0, brute_root(DATA[:8])) in made
    assert (5, 0, brute_root(DATA[:32])) in made


def test_canonical_json_matches_rfc8785_for_leaf_values():
    import rfc8785

    doc = {"b": [1, True, None, 'é\u2028\n"x\\'], "a": {"z": "\U0001f600", "\ue000": 1, "y": -5}, "": "ctl\x01"}
    assert canonical_json(doc) == rfc8785.dumps(doc).decode()
    assert leaf_is_canonical(rfc8785.dumps(doc).decode())
    assert not leaf_is_canonical('{"b":1,"a":2}')
    assert not leaf_is_canonical('{"a": 2}')
    assert not leaf_is_canonical('{"a":1.5}')
