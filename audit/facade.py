"""What other apps may call.

The data plane hands one `RequestLeaf` per settled `/v1` request to a `LedgerBuffer` it owns
(an O(1) append, no I/O, no hashing); its batched usage writer drains the buffer and calls
`ledger_write` in its own thread (one bulk insert, idempotent by request id). Sealing —
indexes, the Merkle tree, the signed checkpoint — runs later in `audit.tasks.ledger_seal`
or `manage.py ledger_seal`, never on the hot path. Control-plane changes go through
`audit.events.audit_record`. Reads for other apps' pages return frozen dataclasses.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime

from audit.leaves import RequestLeaf, body_sha256
from audit.services import ledger_write as _ledger_write

__all__ = ["IntegrityTile", "LedgerBuffer", "RequestLeaf", "body_sha256", "integrity_tile", "ledger_write"]


class LedgerBuffer:
    """Request leaves waiting for the batched writer; owned by the composition root.

    `deque.append` and `popleft` are atomic, so the event loop appends while the writer
    thread drains without a lock, and no leaf slips between a drain and an append."""

    def __init__(self) -> None:
        self._leaves: deque[RequestLeaf] = deque()

    def __len__(self) -> int:
        return len(self._leaves)

    def append_request(self, leaf: RequestLeaf) -> None:
        self._leaves.append(leaf)

    def drain(self) -> list[RequestLeaf]:
        out = []
        pop = self._leaves.popleft
        for _ in range(len(self._leaves)):
            out.append(pop())
        return out


def ledger_write(leaves: list[RequestLeaf]) -> int:
    """Write drained leaves (sync; the usage writer's thread). Returns how many were given."""
    return _ledger_write(leaves)


@dataclass(frozen=True)
class IntegrityTile:
    size: int
    checkpoint_at: datetime | None
    verified_at: datetime | None
    verification: str  # "passed", "failed", "running" or ""
    pending: int


def integrity_tile(*, organization_id: int) -> IntegrityTile:
    from audit.selectors import integrity_state

    state = integrity_state(organization_id)
    v = state.verification
    return IntegrityTile(
        size=state.log.size if state.log else 0,
        checkpoint_at=state.checkpoint.created_at if state.checkpoint else None,
        verified_at=(v.finished_at or v.started_at) if v else None,
        verification=v.status if v else "",
        pending=state.pending,
    )
