"""Per-deployment rate limits: taken per attempt, given back when it fails."""

from __future__ import annotations

import logging

from budgets.admission.refusals import (  # refusals, store errors and the deployment gate
    OPEN_GATE,
    BudgetUnavailable,
    DeploymentGate,
    _deployment_buckets,
    _redis_error,
    _token_buckets,
)
from budgets.admission.types import (
    Refusal,
    Settlement,
)

logger = logging.getLogger(__name__)


class DeploymentLimiting:
    """Part of `budgets.runtime.Budgets` (mixed into it); uses its stores, queues and settings."""

    async def gate_deployments(self, *, deployment_ids: list[int], tokens: int) -> DeploymentGate:
        """Skip candidate deployments at their RPM/TPM limit and charge the first one with room.

        Kept for callers that charge before knowing which deployment answers; prefer
        `deployment_take` on the deployment actually tried."""
        snapshot = await self._snapshot()
        if not snapshot.has_deployment_limits:
            return OPEN_GATE
        groups = [_deployment_buckets(snapshot.deployment_limit(d), tokens) for d in deployment_ids]
        if not any(a or b for a, b in groups):
            return OPEN_GATE
        redis = self.redis()
        if redis is not None:
            try:
                index, wait = await redis.gate(groups=groups)
            except Exception as exc:
                if _redis_error(exc):
                    raise BudgetUnavailable("redis", str(exc) or type(exc).__name__) from exc
                raise
        else:
            index, wait = self.buckets.gate(groups)
        if index < 0:
            first = next(b for pair in groups for b in pair if b is not None)
            limit = first.limit
            message = (
                f"Rate limit reached for every deployment serving this model ({limit.label} and others are at "
                f"their requests or tokens per minute). Please try again in {wait:.3g}s."
            )
            refusal = Refusal(
                kind="requests",
                scope="deployment",
                label=limit.label,
                message=message,
                retry_after=wait,
                resets_at=None,
            )
            return DeploymentGate(refusal=refusal)
        charged = groups[index][1]
        return DeploymentGate(skip=index, buckets=((charged.key, charged.capacity),) if charged else (), tokens=tokens)

    async def deployment_take(self, deployment_id: int, tokens: int) -> tuple[bool, tuple[tuple[str, int], ...]]:
        """Take one request and `tokens` from this deployment's RPM/TPM buckets, on all or none.

        (True, buckets) when taken — `buckets` are (key, capacity) pairs: pass them to `settle`
        as `extra_buckets` when the deployment answered (its tokens are trued up), or to
        `deployment_give_back` when the attempt failed before answering. (False, ()) when the
        deployment is at its limit. A deployment without limits: (True, ())."""
        snapshot = await self._snapshot()
        requests, token_bucket = _deployment_buckets(snapshot.deployment_limit(deployment_id), tokens)
        if requests is None and token_bucket is None:
            return True, ()
        group = (requests, token_bucket)
        redis = self.redis()
        if redis is not None:
            try:
                index, _ = await redis.gate(groups=[group])
            except Exception as exc:
                if _redis_error(exc):
                    raise BudgetUnavailable("redis", str(exc) or type(exc).__name__) from exc
                raise
        else:
            index, _ = self.buckets.gate([group])
        if index < 0:
            return False, ()
        return True, tuple((b.key, b.capacity) for b in group if b is not None)

    def deployment_give_back(self, buckets: tuple[tuple[str, int], ...], *, tokens: int) -> None:
        """Undo a `deployment_take` whose attempt failed before the deployment answered."""
        requests = tuple(item for item in buckets if item[0].endswith(":requests"))
        token_items = _token_buckets(buckets)
        for items, amount in ((requests, 1), (token_items, tokens)):
            if not items or not amount:
                continue
            if self.redis_mode:
                self._enqueue(
                    Settlement(
                        hold=None, cost_units=0, failed=True, buckets=items, token_delta=amount, at=self.clock.now()
                    )
                )
            else:
                self.buckets.give_back(items, amount)
