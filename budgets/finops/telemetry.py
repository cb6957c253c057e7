"""Request telemetry: Prometheus metrics and OpenTelemetry GenAI spans and metrics.

One `Telemetry` object per process, owned by the gateway's composition root and fed by
the pipeline's settle step with the same `UsageEvent` the usage record is made from:

    telemetry = Telemetry.from_settings()
    telemetry.record(event)            # per request, a few microseconds

Prometheus: counters and histograms live in the process (or, with
PROMETHEUS_MULTIPROC_DIR set, in the shared multi-process files, so /metrics is right
with several workers). OpenTelemetry is off unless the standard OTEL_* variables name
an exporter (`OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER`: `console` or `otlp`);
its spans and metrics follow the GenAI semantic conventions (`gen_ai.*`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from budgets.models import HISTOGRAM_BOUNDS_MS
from budgets.usage import UsageEvent

logger = logging.getLogger(__name__)

# Every other rollup bound (x2.5 per step, 1 ms to 100 s): observe() walks the buckets linearly.
SECONDS_BUCKETS = tuple(bound / 1000 for bound in HISTOGRAM_BOUNDS_MS[::2])
LABELS = ("organization", "model", "provider")


@dataclass(frozen=True)
class TelemetrySettings:
    multiprocess_dir: str = ""
    traces_exporter: str = ""
    metrics_exporter: str = ""
    otlp_endpoint: str = ""
    service_name: str = "gatehouse"


def telemetry_settings() -> TelemetrySettings:
    from django.conf import settings

    raw = getattr(settings, "GATEHOUSE_FINOPS", {})
    return TelemetrySettings(
        multiprocess_dir=raw.get("PROMETHEUS_MULTIPROC_DIR", ""),
        traces_exporter=raw.get("OTEL_TRACES_EXPORTER", ""),
        metrics_exporter=raw.get("OTEL_METRICS_EXPORTER", ""),
        otlp_endpoint=raw.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        service_name=raw.get("OTEL_SERVICE_NAME", "gatehouse") or "gatehouse",
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
                self.spend.labels(*labels),
                self.fallbacks.labels(*labels),
                self.latency.labels(*labels),
                self.ttft.labels(*labels),
            )
        return found


class OpenTelemetryGenAI:
    """GenAI spans (one per request, `{operation} {model}`) and the GenAI client metrics."""

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self.tracer = tracer_provider.get_tracer("gatehouse") if tracer_provider is not None else None
        self.meter = meter_provider.get_meter("gatehouse") if meter_provider is not None else None
        if self.meter is not None:
            self.token_usage = self.meter.create_histogram(
                "gen_ai.client.token.usage", unit="{token}", description="Tokens used per request"
            )
            self.duration = self.meter.create_histogram(
                "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration"
            )
            self.ttft = self.meter.create_histogram(
                "gen_ai.server.time_to_first_token", unit="s", description="Time to the first content token"
            )

    def record(self, event: UsageEvent) -> None:
        operation = "embeddings" if event.endpoint == "embeddings" else "chat"
        model = event.model_used or event.model_requested
        attributes = {
            "gen_ai.operation.name": operation,
            "gen_ai.system": event.provider_name or "unknown",
            "gen_ai.request.model": event.model_requested,
            "gen_ai.response.model": event.model_used,
        }
        if event.status_code >= 400:
            attributes["error.type"] = event.error_type or str(event.status_code)
        if self.meter is not None:
            self.duration.record(event.latency_ms / 1000, attributes)
            self.token_usage.record(event.input_tokens, {**attributes, "gen_ai.token.type": "input"})
            if event.output_tokens:
                self.token_usage.record(event.output_tokens, {**attributes, "gen_ai.token.type": "output"})
            if event.ttft_ms is not None:
                self.ttft.record(event.ttft_ms / 1000, attributes)
        if self.tracer is not None:
            from opentelemetry.trace import SpanKind, Status, StatusCode

            start = int(event.created_at.timestamp() * 1e9)
            span = self.tracer.start_span(
                f"{operation} {model}".strip(), kind=SpanKind.CLIENT, start_time=start, attributes=attributes
            )
            span.set_attribute("gen_ai.response.id", event.request_id)
            span.set_attribute("gen_ai.usage.input_tokens", event.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", event.output_tokens)
            span.set_attribute("gatehouse.cost_usd", str(event.cost))
            if event.workflow:
                span.set_attribute("gatehouse.workflow", event.workflow)
            if event.status_code >= 400:
                span.set_status(Status(StatusCode.ERROR, event.error_message[:200]))
            span.end(end_time=start + int(event.latency_ms * 1e6))


class Telemetry:
    """What settle calls once per request. Cheap: label lookups are cached, OTel is off by default."""

    def __init__(self, *, prometheus: PrometheusMetrics | None = None, otel: OpenTelemetryGenAI | None = None) -> None:
        self.prometheus = prometheus
        self.otel = otel

    @classmethod
    def from_settings(cls, config: TelemetrySettings | None = None) -> Telemetry:
        config = config or telemetry_settings()
        prometheus = PrometheusMetrics(multiprocess=bool(config.multiprocess_dir))
        return cls(prometheus=prometheus, otel=_otel_from(config))

    def record(self, event: UsageEvent) -> None:
        if self.prometheus is not None:
            model = event.model_used or event.model_requested or "unknown"
            status_class = f"{min(max(event.status_code // 100, 1), 5)}xx"
            requests, tokens_in, tokens_out, spend, fallbacks, latency, ttft = self.prometheus.children(
                str(event.organization_id), model, event.provider_name or "unknown", status_class
            )
            requests.inc()
            if event.input_tokens:
                tokens_in.inc(event.input_tokens)
            if event.output_tokens:
                tokens_out.inc(event.output_tokens)
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


def _otel_from(config: TelemetrySettings) -> OpenTelemetryGenAI | None:
    """Providers for the exporters the OTEL_* variables name; None when none is named."""
    traces, metrics = config.traces_exporter.lower(), config.metrics_exporter.lower()
    if traces in ("", "none") and metrics in ("", "none"):
        return None
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({"service.name": config.service_name})
    tracer_provider = meter_provider = None
    try:
        if traces not in ("", "none"):
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            tracer_provider = TracerProvider(resource=resource)
            tracer_provider.add_span_processor(BatchSpanProcessor(_span_exporter(traces, config)))
        if metrics not in ("", "none"):
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            reader = PeriodicExportingMetricReader(_metric_exporter(metrics, config))
            meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    except ImportError as error:
        logger.error("OpenTelemetry exporter unavailable (%s); telemetry export stays off", error)
        return None
    return OpenTelemetryGenAI(tracer_provider=tracer_provider, meter_provider=meter_provider)


def _span_exporter(name: str, config: TelemetrySettings) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore

        return OTLPSpanExporter()
    raise ImportError(f"unknown traces exporter {name!r}")


def _metric_exporter(name: str, config: TelemetrySettings) -> Any:
    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore

        return OTLPMetricExporter()
    raise ImportError(f"unknown metrics exporter {name!r}")
