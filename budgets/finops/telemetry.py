"""Request telemetry: Prometheus metrics and OpenTelemetry GenAI spans and metrics.

One `Telemetry` object per process, owned by the gateway's composition root and fed by
the pipeline's settle step with the same `UsageEvent` the usage record is made from:

    telemetry = Telemetry.from_settings()
    telemetry.record(event)            # per request, a few microseconds

Prometheus: counters and histograms live in the process (or, with
PROMETHEUS_MULTIPROC_DIR set, in the shared multi-process files, so /metrics is right
with several workers). OpenTelemetry is off unless the standard OTEL_* variables name
an exporter (`OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER`: `console` or `otlp`);
its spans and metrics follow the GenAI semantic conventions (`gen_ai.*`), see
`budgets/finops/otel.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from budgets.finops.otel import OpenTelemetryGenAI, OtelSettings, otel_from
from budgets.models import HISTOGRAM_BOUNDS_MS
from budgets.usage import UsageEvent

logger = logging.getLogger(__name__)

# Every other rollup bound (x2.5 per step, 1 ms to 100 s): observe() walks the buckets linearly.
SECONDS_BUCKETS = tuple(bound / 1000 for bound in HISTOGRAM_BOUNDS_MS[::2])
LABELS = ("organization", "model", "provider")


@dataclass(frozen=True)
class TelemetrySettings:
    multiprocess_dir: str = ""
    otel: OtelSettings = field(default_factory=OtelSettings)


def telemetry_settings() -> TelemetrySettings:
    from django.conf import settings

    raw = getattr(settings, "GATEHOUSE_FINOPS", {})
    return TelemetrySettings(
        multiprocess_dir=raw.get("PROMETHEUS_MULTIPROC_DIR", ""),
        otel=OtelSettings(
            traces_exporter=raw.get("OTEL_TRACES_EXPORTER", ""),
            metrics_exporter=raw.get("OTEL_METRICS_EXPORTER", ""),
            endpoint=raw.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            traces_endpoint=raw.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
            metrics_endpoint=raw.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", ""),
            headers=raw.get("OTEL_EXPORTER_OTLP_HEADERS", ""),
            timeout_ms=int(raw.get("OTEL_EXPORTER_OTLP_TIMEOUT", 10000)),
            metric_interval_ms=int(raw.get("OTEL_METRIC_EXPORT_INTERVAL", 60000)),
            disabled=bool(raw.get("OTEL_SDK_DISABLED", False)),
            resource_attributes=raw.get("OTEL_RESOURCE_ATTRIBUTES", ""),
            service_name=raw.get("OTEL_SERVICE_NAME", "gatehouse") or "gatehouse",
        ),
    )


class PrometheusMetrics:
    """The gateway's Prometheus series. With a multi-process directory the values are
    written to mmap files that /metrics aggregates across workers."""

    def __init__(self, *, registry: Any = None, multiprocess: bool = False) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry if registry is not None else (None if multiprocess else CollectorRegistry())
        kw = {"registry": self.registry} if self.registry is not None else {}
        self.requests = Counter("gatehouse_requests", "Requests settled", [*LABELS, "status_class"], **kw)
        self.tokens = Counter("gatehouse_tokens", "Tokens by direction", [*LABELS, "direction"], **kw)
        self.spend = Counter("gatehouse_spend_usd", "Spend in USD (exact sums live in the database)", LABELS, **kw)
        self.fallbacks = Counter("gatehouse_fallbacks", "Requests served after a fallback", LABELS, **kw)
        self.latency = Histogram(
            "gatehouse_request_duration_seconds", "Request latency", LABELS, buckets=SECONDS_BUCKETS, **kw
        )
        self.ttft = Histogram(
            "gatehouse_time_to_first_token_seconds",
            "Time to the first content token",
            LABELS,
            buckets=SECONDS_BUCKETS,
            **kw,
        )
        gauge_mode = {"multiprocess_mode": "mostrecent"} if multiprocess else {}
        self.deployment_health = Gauge(
            "gatehouse_deployment_healthy", "1 when the deployment is healthy", ["deployment"], **kw, **gauge_mode
        )
        self.breaker_state = Gauge(
            "gatehouse_breaker_open",
            "1 when the deployment's circuit breaker is open",
            ["deployment"],
            **kw,
            **gauge_mode,
        )
        self._children: dict[tuple, tuple] = {}

    def children(self, organization: str, model: str, provider: str, status_class: str) -> tuple:
        """The labelled series of one label set, looked up once (labels() is the costly part)."""
        key = (organization, model, provider, status_class)
        found = self._children.get(key)
        if found is None:
            labels = (organization, model, provider)
            found = self._children[key] = (
                self.requests.labels(*labels, status_class),
                self.tokens.labels(*labels, "input"),
                self.tokens.labels(*labels, "output"),
                self.tokens.labels(*labels, "reasoning"),
                self.spend.labels(*labels),
                self.fallbacks.labels(*labels),
                self.latency.labels(*labels),
                self.ttft.labels(*labels),
            )
        return found


class Telemetry:
    """What settle calls once per request. Cheap: label lookups are cached, OTel is off by default."""

    def __init__(self, *, prometheus: PrometheusMetrics | None = None, otel: OpenTelemetryGenAI | None = None) -> None:
        self.prometheus = prometheus
        self.otel = otel

    @classmethod
    def from_settings(cls, config: TelemetrySettings | None = None) -> Telemetry:
        config = config or telemetry_settings()
        prometheus = PrometheusMetrics(multiprocess=bool(config.multiprocess_dir))
        return cls(prometheus=prometheus, otel=otel_from(config.otel))

    def record(self, event: UsageEvent) -> None:
        if self.prometheus is not None:
            model = event.model_used or event.model_requested or "unknown"
            status_class = f"{min(max(event.status_code // 100, 1), 5)}xx"
            requests, tokens_in, tokens_out, reasoning, spend, fallbacks, latency, ttft = self.prometheus.children(
                str(event.organization_id), model, event.provider_name or "unknown", status_class
            )
            requests.inc()
            if event.input_tokens:
                tokens_in.inc(event.input_tokens)
            if event.output_tokens:
                tokens_out.inc(event.output_tokens)
                thinking = (event.metadata or {}).get("reasoning_tokens")
                if isinstance(thinking, int) and thinking > 0:
                    reasoning.inc(thinking)  # a part of the output tokens
            if event.cost:
                spend.inc(float(event.cost))
            if event.attempts > 1:
                fallbacks.inc()
            latency.observe(event.latency_ms / 1000)
            if event.ttft_ms is not None:
                ttft.observe(event.ttft_ms / 1000)
        if self.otel is not None:
            self.otel.record(event)

    def deployment_health(self, deployment: str, *, healthy: bool) -> None:
        if self.prometheus is not None:
            self.prometheus.deployment_health.labels(deployment).set(1 if healthy else 0)

    def breaker_state(self, deployment: str, *, open_: bool) -> None:
        if self.prometheus is not None:
            self.prometheus.breaker_state.labels(deployment).set(1 if open_ else 0)

    def shutdown(self) -> None:
        """Export what OpenTelemetry still holds (the gateway's stop calls it)."""
        if self.otel is not None:
            self.otel.shutdown()
