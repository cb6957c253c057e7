"""Telemetry: Prometheus series from settled requests (in one process and across worker
processes), OpenTelemetry GenAI spans and metrics collected in memory, /metrics access."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from budgets.finops.telemetry import OpenTelemetryGenAI, PrometheusMetrics, Telemetry
from budgets.usage import UsageEvent


def event(**extra) -> UsageEvent:
    fields = {
        "request_id": "req_1",
        "created_at": datetime(2026, 3, 1, 12, tzinfo=UTC),
        "organization_id": 7,
        "endpoint": "chat",
        "status_code": 200,
        "model_requested": "gpt-4o-mini",
        "model_used": "gpt-4o-mini",
        "provider_name": "openai",
        "input_tokens": 100,
        "output_tokens": 20,
        "cost": Decimal("0.0004"),
        "latency_ms": 850.0,
        "ttft_ms": 120.0,
        "attempts": 2,
    }
    fields.update(extra)
    return UsageEvent(**fields)


def sample(registry, name: str, labels: dict) -> float | None:
    return registry.get_sample_value(name, labels)


def test_prometheus_counts_requests_tokens_spend_and_histograms():
    telemetry = Telemetry(prometheus=PrometheusMetrics())
    telemetry.record(event(metadata={"reasoning_tokens": 12}))
    telemetry.record(event(status_code=502, output_tokens=0, ttft_ms=None, attempts=1))
    registry = telemetry.prometheus.registry
    base = {"organization": "7", "model": "gpt-4o-mini", "provider": "openai"}
    assert sample(registry, "gatehouse_requests_total", {**base, "status_class": "2xx"}) == 1
    assert sample(registry, "gatehouse_requests_total", {**base, "status_class": "5xx"}) == 1
    assert sample(registry, "gatehouse_tokens_total", {**base, "direction": "input"}) == 200
    assert sample(registry, "gatehouse_tokens_total", {**base, "direction": "output"}) == 20
    assert sample(registry, "gatehouse_tokens_total", {**base, "direction": "reasoning"}) == 12
    assert sample(registry, "gatehouse_spend_usd_total", base) == pytest.approx(0.0008)
    assert sample(registry, "gatehouse_fallbacks_total", base) == 1
    assert sample(registry, "gatehouse_time_to_first_token_seconds_count", base) == 1
    assert sample(registry, "gatehouse_request_duration_seconds_bucket", {**base, "le": "0.630957"}) == 0
    assert sample(registry, "gatehouse_request_duration_seconds_bucket", {**base, "le": "1.584893"}) == 2
    telemetry.breaker_state("dep-a", open_=True)
    assert sample(registry, "gatehouse_breaker_open", {"deployment": "dep-a"}) == 1


def test_opentelemetry_genai_spans_and_metrics_in_memory():
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = Telemetry(
        otel=OpenTelemetryGenAI(tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]))
    )
    telemetry.record(event())
    telemetry.record(event(request_id="req_2", status_code=429, error_type="rate_limit", ttft_ms=None))

    finished = spans.get_finished_spans()
    assert [s.name for s in finished] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    first = finished[0]
    assert first.attributes["gen_ai.operation.name"] == "chat"
    assert first.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert first.attributes["gen_ai.usage.input_tokens"] == 100
    assert first.attributes["gen_ai.response.id"] == "req_1"
    assert (first.end_time - first.start_time) == 850_000_000
    assert finished[1].attributes["error.type"] == "rate_limit"

    names = {
        metric.name: metric
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.server.time_to_first_token",
    } <= set(names)
    usage = names["gen_ai.client.token.usage"].data.data_points
    assert sum(p.sum for p in usage if p.attributes["gen_ai.token.type"] == "input") == 200


def test_opentelemetry_is_off_without_otel_variables():
    from budgets.finops.telemetry import TelemetrySettings

    assert Telemetry.from_settings(TelemetrySettings()).otel is None


def test_metrics_add_up_across_worker_processes(tmp_path, settings, client, db):
    """Two processes record in multi-process mode; /metrics in this one sees both."""
    script = textwrap.dedent(
        f"""
        import os, sys
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(tmp_path)!r}
        sys.path.insert(0, {str(__import__("pathlib").Path.cwd())!r})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
        import django; django.setup()
        from tests.budgets.test_finops_telemetry import event
        from budgets.finops.telemetry import PrometheusMetrics, Telemetry
        telemetry = Telemetry(prometheus=PrometheusMetrics(multiprocess=True))
        for _ in range(int(sys.argv[1])):
            telemetry.record(event())
        """
    )
    for count in (3, 4):
        subprocess.run([sys.executable, "-c", script, str(count)], check=True, timeout=60)
    settings.GATEHOUSE_FINOPS = {
        **settings.GATEHOUSE_FINOPS,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "METRICS_TOKEN": "t0k",
    }
    assert client.get("/metrics").status_code == 403
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0k")
    assert response.status_code == 200
    body = response.content.decode()
    line = next(
        row for row in body.splitlines() if row.startswith("gatehouse_requests_total{") and 'status_class="2xx"' in row
    )
    assert float(line.rsplit(" ", 1)[1]) == 7.0


def test_metrics_network_allow_list_and_budget_gauges(settings, client, world):
    from budgets import services

    services.budget_create(organization=world.org, scope="team", scope_id=world.team.id, amount="100")
    settings.GATEHOUSE_FINOPS = {**settings.GATEHOUSE_FINOPS, "METRICS_TOKEN": "", "METRICS_NETWORKS": ["10.0.0.0/8"]}
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    body = client.get("/metrics", REMOTE_ADDR="10.1.2.3").content.decode()
    assert "gatehouse_budget_remaining_usd{" in body and "100.0" in body
