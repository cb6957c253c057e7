"""The state one request carries through the pipeline."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from console.keycache import KeyContext
from providers.facade import DeploymentInfo, ModelInfo, Usage

NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


@dataclass(slots=True)
class RequestContext:
    request_id: str
    endpoint: str
    key: KeyContext
    gateway: Any = None  # routing.gateway.Gateway: where the record goes, the shared state lives
    headers: Mapping[str, str] = field(
        default_factory=dict
    )  # the client's request headers (classification, attribution)
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    stream: bool = False
    include_usage: bool = False
    model_requested: str = ""
    model: ModelInfo | None = None
    deployment: DeploymentInfo | None = None
    attempts: int = 0
    attempt_trail: list[dict[str, Any]] = field(default_factory=list)
    admission: Any = None  # budgets.facade.Admission when budgets or limits apply
    admission_settled: bool = False
    deployment_limits: Any = None  # routing.pipeline.admit.DeploymentLimits, per attempt
    worst_tokens: int | None = None  # tokens the rate limits were charged up front
    prompt_estimate: int = 0  # estimated prompt tokens (admission, the journal)
    request_digest: str = ""  # SHA-256 of the request body as received (the ledger leaf)
    response_digest: str = ""  # SHA-256 of the response body as sent
    guard: Any = None  # guardrails.facade.Inbound when the guard ran
    guard_verdict: Any = None  # the final guardrails verdict (record metadata, ledger leaf)
    usage: Usage | None = None
    ttft: float | None = None  # seconds after `started`
    tags: list[str] = field(default_factory=list)
    workflow: str = ""
    end_user: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # Routing: what the classify and route stages decided, for the usage record and headers.
    data_class: str = ""
    detected: tuple[str, ...] = ()
    route: str = ""
    rule: str = ""
    policy_version: int = 0
    routing: dict[str, Any] = field(default_factory=dict)  # extra usage metadata (fallbacks, cascade layers)
    prior_calls: list[tuple[ModelInfo, Usage]] = field(default_factory=list)  # cascade calls before the answer
    response_headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        gateway: Any,
        key: KeyContext,
        *,
        endpoint: str,
        headers: Mapping[str, str] = NO_HEADERS,
        request_id: str = "",
    ) -> RequestContext:
        return cls(
            request_id=request_id or new_request_id(), endpoint=endpoint, key=key, gateway=gateway, headers=headers
        )

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
