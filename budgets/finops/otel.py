"""OpenTelemetry GenAI spans and metrics, and their exporters from the standard OTEL_* settings.

Off unless the settings name an exporter: `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER`
(`otlp` or `console`), or an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the
per-signal `..._TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`) with the exporter left unset,
which means `otlp` as in the OpenTelemetry SDKs. `OTEL_SDK_DISABLED=true` turns all off.
OTLP goes over HTTP with protobuf bodies (`opentelemetry-exporter-otlp-proto-http`) to
`<endpoint>/v1/traces` and `<endpoint>/v1/metrics`.

Names follow the GenAI semantic conventions: one CLIENT span per request named
`{gen_ai.operation.name} {model}`; the histograms `gen_ai.client.token.usage` and
`gen_ai.client.operation.duration` with the conventions' bucket boundaries, and
`gen_ai.server.time_to_first_token`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from budgets.records import UsageEvent

logger = logging.getLogger(__name__)

# The bucket boundaries the GenAI metric conventions ask for.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
OFF = ("", "none")


@dataclass(frozen=True)
class OtelSettings:
    """The standard OTEL_* variables, as gatehouse/settings.py read them."""

    traces_exporter: str = ""
    metrics_exporter: str = ""
    endpoint: str = ""
    traces_endpoint: str = ""
    metrics_endpoint: str = ""
    headers: str = ""
    timeout_ms: int = 10000
    metric_interval_ms: int = 60000
    disabled: bool = False
    resource_attributes: str = ""
    service_name: str = "gatehouse"

    def exporters(self) -> tuple[str, str]:
        """(traces, metrics) exporter names; an endpoint alone means OTLP, as in the SDKs."""
        if self.disabled:
            return "", ""
        traces, metrics = self.traces_exporter.strip().lower(), self.metrics_exporter.strip().lower()
        if not traces and (self.endpoint or self.traces_endpoint):
            traces = "otlp"
        if not metrics and (self.endpoint or self.metrics_endpoint):
            metrics = "otlp"
        return ("" if traces in OFF else traces), ("" if metrics in OFF else metrics)

    def url(self, signal: str) -> str:
        """The OTLP/HTTP URL of a signal (`traces` or `metrics`): the per-signal endpoint
        as given, else the base endpoint plus `/v1/<signal>`."""
        specific = self.traces_endpoint if signal == "traces" else self.metrics_endpoint
        if specific:
            return specific
        base = (self.endpoint or "http://localhost:4318").rstrip("/")
        return f"{base}/v1/{signal}"

    def header_dict(self) -> dict[str, str]:
        """`key=value,key2=value2` (values URL-encoded), as the OTLP exporter specification writes them."""
        from urllib.parse import unquote

        found = {}
        for item in self.headers.split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip():
                found[unquote(key.strip()).lower()] = unquote(value.strip())
        return found

    def resource(self) -> dict[str, str]:
        attributes = {}
        for item in self.resource_attributes.split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip():
                attributes[key.strip()] = value.strip()
        attributes["service.name"] = self.service_name or "gatehouse"
        return attributes


class OpenTelemetryGenAI:
    """GenAI spans (one per request, `{operation} {model}`) and the GenAI client metrics."""

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.tracer = tracer_provider.get_tracer("gatehouse") if tracer_provider is not None else None
        self.meter = meter_provider.get_meter("gatehouse") if meter_provider is not None else None
        if self.meter is not None:
            self.token_usage = self.meter.create_histogram(
                "gen_ai.client.token.usage", unit="{token}", description="Input and output tokens used"
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
        reasoning = _reasoning(event)
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
            if reasoning:
                span.set_attribute("gatehouse.usage.reasoning_tokens", reasoning)
            span.set_attribute("gatehouse.cost_usd", str(event.cost))
            if event.workflow:
                span.set_attribute("gatehouse.workflow", event.workflow)
            if event.status_code >= 400:
                span.set_status(Status(StatusCode.ERROR, event.error_message[:200]))
            span.end(end_time=start + int(event.latency_ms * 1e6))

    def shutdown(self, timeout: float = 5.0) -> None:
        """Export what is pending and stop the exporters (at process stop), waiting at most
        `timeout` seconds: an unreachable collector's retries must not hold the stop up."""

        def stop() -> None:
            for provider in (self.tracer_provider, self.meter_provider):
                if provider is not None and hasattr(provider, "shutdown"):
                    try:
                        provider.shutdown()
                    except Exception as error:  # an exporter's failure must not fail the stop
                        logger.warning("OpenTelemetry shutdown failed: %s", error)

        worker = threading.Thread(target=stop, name="otel-shutdown", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            logger.warning("OpenTelemetry export still pending after %.0f s at stop; left behind", timeout)


def _reasoning(event: UsageEvent) -> int:
    value = (event.metadata or {}).get("reasoning_tokens")
    return value if isinstance(value, int) and value > 0 else 0


def otel_from(config: OtelSettings) -> OpenTelemetryGenAI | None:
    """Providers for the exporters the OTEL_* settings name; None when none is named."""
    traces, metrics = config.exporters()
    if not traces and not metrics:
        return None
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create(config.resource())
    tracer_provider = meter_provider = None
    try:
        if traces:
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            tracer_provider = TracerProvider(resource=resource)
            tracer_provider.add_span_processor(BatchSpanProcessor(_span_exporter(traces, config)))
        if metrics:
            meter_provider = _meter_provider(resource, _metric_exporter(metrics, config), config.metric_interval_ms)
    except ImportError as error:
        logger.error("OpenTelemetry exporter unavailable (%s); telemetry export stays off", error)
        return None
    return OpenTelemetryGenAI(tracer_provider=tracer_provider, meter_provider=meter_provider)


def _meter_provider(resource: Any, exporter: Any, interval_ms: int) -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=max(interval_ms, 100))
    views = [
        View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(boundaries=bounds))
        for name, bounds in (
            ("gen_ai.client.token.usage", TOKEN_BUCKETS),
            ("gen_ai.client.operation.duration", DURATION_BUCKETS),
            ("gen_ai.server.time_to_first_token", TTFT_BUCKETS),
        )
    ]
    return MeterProvider(resource=resource, metric_readers=[reader], views=views)


def _span_exporter(name: str, config: OtelSettings) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=config.url("traces"), headers=config.header_dict(), timeout=config.timeout_ms / 1000
        )
    raise ImportError(f"unknown traces exporter {name!r}")


def _metric_exporter(name: str, config: OtelSettings) -> Any:
    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(
            endpoint=config.url("metrics"), headers=config.header_dict(), timeout=config.timeout_ms / 1000
        )
    raise ImportError(f"unknown metrics exporter {name!r}")
