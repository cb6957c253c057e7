"""RFC 9162 Merkle tree hashing for the ledger verifier: leaf and node hashes, compact
ranges, tree roots, inclusion and consistency proofs. Standard library only, so the
verifier's folder runs on an auditor's machine without the project."""

from __future__ import annotations

import hashlib


class VerificationError(Exception):
    pass


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """The right edge of a tree: the roots of its perfect subtrees, largest first.

    Appending is amortized O(1) and the root is O(log n), so a tree of any size is
    recomputed in one pass with O(log n) memory."""

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: list[bytes] | None = None) -> None:
        self.size = size
        self.hashes = list(hashes or [])
        if len(self.hashes) != bin(size).count("1"):
            raise VerificationError(f"a compact range of size {size} needs {bin(size).count('1')} hashes")

    def append(self, lh: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash; returns the perfect subtrees completed: (level, index, hash)."""
        made = []
        hashes = self.hashes
        hashes.append(lh)
        n = self.size
        level = 0
        while n & 1:
            right = hashes.pop()
            left = hashes.pop()
            level += 1
            h = node_hash(left, right)
            hashes.append(h)
            n >>= 1
            made.append((level, n, h))
        self.size += 1
        return made

    def root(self) -> bytes:
        if not self.hashes:
            return hashlib.sha256(b"").digest()
        root = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            root = node_hash(h, root)
        return root


def tree_root(leaf_hashes: list[bytes]) -> bytes:
    cr = CompactRange()
    for lh in leaf_hashes:
        cr.append(lh)
    return cr.root()


def verify_inclusion(index: int, size: int, lh: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size or index < 0:
        return False
    fn, sn = index, size - 1
    r = lh
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if size1 > size2 or size1 < 0:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof:
        return False
    if size1 & (size1 - 1) == 0:
        proof = [root1, *proof]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0
