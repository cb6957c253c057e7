"""Usage records, buffered in memory and written in batches off the hot path."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import close_old_connections

from budgets.models import UsageRecord

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class UsageEvent:
    """Everything the usage record needs, in plain values; built by the pipeline."""

    request_id: str
    created_at: datetime
    organization_id: int
    endpoint: str
    status_code: int
    team_id: int | None = None
    user_id: int | None = None
    key_id: int | None = None
    stream: bool = False
    model_requested: str = ""
    model_used: str = ""
    deployment_id: int | None = None
    deployment_name: str = ""
    provider_name: str = ""
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    tokens_estimated: bool = False
    input_price: Decimal = Decimal(0)
    output_price: Decimal = Decimal(0)
    cached_input_price: Decimal = Decimal(0)
    input_cost: Decimal = Decimal(0)
    output_cost: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    tokens_per_second: float | None = None
    error_type: str = ""
    error_code: str = ""
    error_message: str = ""
    tags: list[str] = field(default_factory=list)
    workflow: str = ""
    end_user: str = ""
    metadata: dict = field(default_factory=dict)


class UsageBuffer:
    """A process-wide queue of pending records.

    `add` is called on the event loop and costs a deque append; `flush` runs in a
    worker thread and writes everything pending with one bulk insert. Deque appends
    and pops are atomic, so no record can slip between a flush's read and its reset.
    A failed write puts the batch back for the next attempt (bounded by GATEHOUSE_USAGE_BUFFER_MAX).
    """

    def __init__(self) -> None:
        self._pending: deque[UsageEvent] = deque()
        self._flush_lock = threading.Lock()
        self.dropped = 0

    def add(self, event: UsageEvent) -> None:
        self._pending.append(event)

    def __len__(self) -> int:
        return len(self._pending)

    def _take(self) -> list[UsageEvent]:
        batch = []
        pop = self._pending.popleft
        try:
            while True:
                batch.append(pop())
        except IndexError:
            return batch

    def flush(self) -> int:
        """Write what is pending; returns how many records were written."""
        with self._flush_lock:
            batch = self._take()
            if not batch:
                return 0
            try:
                close_old_connections()
                UsageRecord.objects.bulk_create(
                    [UsageRecord(**asdict(event)) for event in batch], batch_size=500, ignore_conflicts=True
                )
            except Exception:
                logger.exception("usage flush failed; %d records kept for the next attempt", len(batch))
                self._pending.extendleft(reversed(batch))
                overflow = len(self._pending) - settings.GATEHOUSE["USAGE_BUFFER_MAX"]
                if overflow > 0:
                    for _ in range(overflow):
                        self._pending.popleft()
                    self.dropped += overflow
                    logger.error("usage buffer overflow: %d oldest records dropped", overflow)
                raise
            return len(batch)


usage_buffer = UsageBuffer()
