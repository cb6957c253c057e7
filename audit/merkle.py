"""RFC 9162 proofs over a tree whose node hashes come from storage.

The hashing itself lives in the standalone verifier (`audit.verifier.gatehouse_verify`), so
the gateway, the witness and an auditor compute the same bytes. Here a `NodeSource` gives
the hash of any perfect, aligned subtree; proofs ask it for O(log n) of them.
"""

from __future__ import annotations

from collections.abc import Callable

from audit.verifier.gatehouse_verify import largest_power_of_two_below, node_hash

# Perfect subtree hash: (level, index) -> hash of leaves [index << level, (index + 1) << level).
PerfectHash = Callable[[int, int], bytes]


def _is_perfect(lo: int, hi: int) -> bool:
    n = hi - lo
    return n & (n - 1) == 0 and lo % n == 0


def range_hash(perfect: PerfectHash, lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for a range that starts on a boundary of its left subtree."""
    if _is_perfect(lo, hi):
        n = hi - lo
        level = n.bit_length() - 1
        return perfect(level, lo >> level)
    k = largest_power_of_two_below(hi - lo)
    return node_hash(range_hash(perfect, lo, lo + k), range_hash(perfect, lo + k, hi))


def inclusion_path(perfect: PerfectHash, index: int, size: int) -> list[bytes]:
    """PATH(m, D[0:n]) of RFC 9162 section 2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")

    def path(m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = largest_power_of_two_below(n)
        if m < k:
            return [*path(m, lo, lo + k), range_hash(perfect, lo + k, hi)]
        return [*path(m - k, lo + k, hi), range_hash(perfect, lo, lo + k)]

    return path(index, 0, size)


def consistency_path(perfect: PerfectHash, size1: int, size2: int) -> list[bytes]:
    """PROOF(m, D[0:n]) of RFC 9162 section 2.1.4.1."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == 0 or size1 == size2:
        return []

    def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [range_hash(perfect, lo, hi)]
        k = largest_power_of_two_below(n)
        if m <= k:
            return [*subproof(m, lo, lo + k, complete), range_hash(perfect, lo + k, hi)]
        return [*subproof(m - k, lo + k, hi, False), range_hash(perfect, lo, lo + k)]

    return subproof(size1, 0, size2, True)


def memory_source(leaf_hashes: list[bytes]) -> PerfectHash:
    """A perfect-subtree source over leaf hashes in memory (tests, small trees)."""
    cache: dict[tuple[int, int], bytes] = {}

    def perfect(level: int, index: int) -> bytes:
        if level == 0:
            return leaf_hashes[index]
        key = (level, index)
        if key not in cache:
            cache[key] = node_hash(perfect(level - 1, 2 * index), perfect(level - 1, 2 * index + 1))
        return cache[key]

    return perfect
