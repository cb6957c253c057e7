"""What the budget engine answers with: refusals, store failures and the deployment gate."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from budgets.admission.ratelimit import buckets_for, wait_for
from budgets.admission.types import (
    Admission,
    Bucket,
    CompiledLimit,
    CounterRef,
    Refusal,
)
from budgets.models import UNITS_PER_USD, units_to_usd
from gatehouse.money import money_format

logger = logging.getLogger(__name__)


FREE = Admission(hold=None, refusal=None, buckets=(), tokens=0, headers=())
DEGRADED = Admission(hold=None, refusal=None, buckets=(), tokens=0, headers=(), degraded=True)
UNAVAILABLE_CODE = "budget_store_unavailable"


class BudgetUnavailable(Exception):
    """The store that enforces budgets (`redis` or `database`) cannot be used: the request is not admitted."""

    code = UNAVAILABLE_CODE

    def __init__(self, store: str, detail: str) -> None:
        self.store = store
        self.detail = detail
        super().__init__(f"The budget store ({store}) is unavailable: {detail}")

    @property
    def refusal(self) -> Refusal:
        return Refusal(
            kind="unavailable",
            scope=self.store,
            label=self.store,
            message=(
                f"The gateway cannot check this request's budget right now (its {self.store} store is unavailable);"
                " it was not sent. Please retry shortly."
            ),
            retry_after=1.0,
            resets_at=None,
        )


def _redis_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError | ConnectionError) or type(exc).__module__.startswith("redis")


def _money(units: int) -> str:
    return money_format(units_to_usd(units))


def _units_up(amount: Decimal) -> int:
    """A reservation rounds up: never reserve less than the worst case."""
    return int((amount * UNITS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def _budget_refusal(ref: CounterRef, *, used: int, amount: int, now: datetime) -> Refusal:
    budget = ref.budget
    left = max(0, budget.limit_units - used)
    resets = f"It resets at {ref.end.astimezone(budget.zone).isoformat()}." if ref.end else "It never resets."
    message = (
        f"Budget exceeded: the {budget.period} budget of {budget.label} ({_money(budget.limit_units)}) has "
        f"{_money(left)} left and this request may cost up to {_money(amount)}. {resets}"
    )
    retry = (ref.end - now).total_seconds() if ref.end is not None else None
    return Refusal(
        kind="budget", scope=budget.scope, label=budget.label, message=message, retry_after=retry, resets_at=ref.end
    )


def _rate_refusal(bucket: Bucket, level: float) -> Refusal:
    wait = wait_for(level, bucket.cost, bucket.capacity)
    unit = "requests per min (RPM)" if bucket.kind == "requests" else "tokens per min (TPM)"
    used = max(0, round(bucket.capacity - level))
    message = (
        f"Rate limit reached for {bucket.limit.label} on {unit}: Limit {bucket.capacity}, Used {used}, "
        f"Requested {bucket.cost}. Please try again in {wait:.3g}s."
    )
    return Refusal(
        kind=bucket.kind,
        scope=bucket.limit.scope,
        label=bucket.limit.label,
        message=message,
        retry_after=wait,
        resets_at=None,
    )


def _refused(refusal: Refusal, headers: tuple[tuple[str, str], ...] = ()) -> Admission:
    return Admission(hold=None, refusal=refusal, buckets=(), tokens=0, headers=headers)


def _token_buckets(buckets: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    return tuple(item for item in buckets if item[0].endswith(":tokens"))


class DeploymentGate:
    """Which of the candidate deployments to try, after their own rate limits."""

    __slots__ = ("skip", "refusal", "buckets", "tokens")

    def __init__(
        self,
        *,
        skip: int = 0,
        refusal: Refusal | None = None,
        buckets: tuple[tuple[str, int], ...] = (),
        tokens: int = 0,
    ) -> None:
        self.skip = skip  # candidates before this index are at their limits
        self.refusal = refusal
        self.buckets = buckets
        self.tokens = tokens


OPEN_GATE = DeploymentGate()


def _deployment_buckets(limit: CompiledLimit | None, tokens: int) -> tuple[Bucket | None, Bucket | None]:
    if limit is None:
        return None, None
    found = buckets_for([limit], tokens=tokens)
    requests = next((b for b in found if b.kind == "requests"), None)
    token_bucket = next((b for b in found if b.kind == "tokens"), None)
    return requests, token_bucket
