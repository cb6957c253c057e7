"""OpenTelemetry over OTLP/HTTP: a real receiver on loopback decodes what the gateway exports.

The receiver accepts `POST /v1/traces` and `POST /v1/metrics` protobuf bodies, as an
OpenTelemetry collector does, and decodes them with opentelemetry-proto.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from budgets.finops.otel import OtelSettings
from budgets.finops.telemetry import Telemetry, TelemetrySettings, telemetry_settings
from budgets.usage import UsageEvent
from tests.conftest import FAST, usage_wait


class Receiver:
    """A minimal OTLP/HTTP receiver: stores decoded spans and metric points per name."""

    def __init__(self) -> None:
        self.spans: list = []
        self.metrics: dict[str, list] = {}
        self.resources: list[dict] = []
        self.paths: list[str] = []
        self.headers: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.take(self.path, self.headers.get("content-type", ""), body, dict(self.headers))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.lock = threading.Lock()

    def take(self, path: str, content_type: str, body: bytes, headers: dict) -> None:
        assert content_type == "application/x-protobuf"
        with self.lock:
            self.paths.append(path)
            self.headers.append({k.lower(): v for k, v in headers.items()})
            if path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    self.resources.append({a.key: a.value.string_value for a in resource_spans.resource.attributes})
                    for scope in resource_spans.scope_spans:
                        self.spans.extend(scope.spans)
            elif path == "/v1/metrics":
                request = ExportMetricsServiceRequest.FromString(body)
                for resource_metrics in request.resource_metrics:
                    for scope in resource_metrics.scope_metrics:
                        for metric in scope.metrics:
                            self.metrics.setdefault(metric.name, []).append(metric)

    def span_attributes(self, span) -> dict:
        values = {}
        for attribute in span.attributes:
            value = attribute.value
            values[attribute.key] = getattr(value, value.WhichOneof("value"))
        return values

    def histogram_points(self, name: str) -> list[tuple[dict, float, int, list[float]]]:
        points = []
        for metric in self.metrics.get(name, []):
            for point in metric.histogram.data_points:
                attributes = {a.key: a.value.string_value for a in point.attributes}
                points.append((attributes, point.sum, point.count, list(point.explicit_bounds)))
        return points

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def event(**extra) -> UsageEvent:
    fields = {
        "request_id": "req_otlp",
        "created_at": datetime(2026, 3, 1, 12, tzinfo=UTC),
        "organization_id": 7,
        "endpoint": "chat",
        "status_code": 200,
        "model_requested": "gpt-5.5",
        "model_used": "gpt-5.5",
        "provider_name": "openai",
        "input_tokens": 100,
        "output_tokens": 40,
        "cost": Decimal("0.0004"),
        "latency_ms": 850.0,
        "ttft_ms": 120.0,
        "metadata": {"reasoning_tokens": 24},
    }
    fields.update(extra)
    return UsageEvent(**fields)


def test_an_endpoint_alone_turns_otlp_on_and_sdk_disabled_turns_it_off():
    assert OtelSettings(endpoint="http://127.0.0.1:4318").exporters() == ("otlp", "otlp")
    assert OtelSettings(traces_endpoint="http://c/v1/traces").exporters() == ("otlp", "")
    assert OtelSettings(endpoint="http://c", metrics_exporter="none").exporters() == ("otlp", "")
    assert OtelSettings(endpoint="http://c", disabled=True).exporters() == ("", "")
    assert OtelSettings().exporters() == ("", "")
    assert OtelSettings(endpoint="http://c:4318/").url("traces") == "http://c:4318/v1/traces"
    assert OtelSettings(metrics_endpoint="http://m/x").url("metrics") == "http://m/x"
    assert OtelSettings(headers="Authorization=Bearer%20t, x-tenant = a").header_dict() == {
        "authorization": "Bearer t",
        "x-tenant": "a",
    }


def test_otlp_http_exports_genai_spans_and_metrics_to_a_receiver():
    with Receiver() as receiver:
        config = OtelSettings(
            endpoint=receiver.url,
            headers="x-otlp-token=s3cret",
            resource_attributes="deployment.environment=test",
            service_name="gatehouse-test",
        )
        telemetry = Telemetry.from_settings(TelemetrySettings(otel=config))
        assert telemetry.otel is not None
        telemetry.record(event())
        telemetry.record(event(request_id="req_err", status_code=429, error_type="rate_limit", ttft_ms=None))
        telemetry.shutdown()  # flushes the batch span processor and the periodic metric reader

    assert set(receiver.paths) == {"/v1/traces", "/v1/metrics"}
    assert all(h.get("x-otlp-token") == "s3cret" for h in receiver.headers)
    assert receiver.resources[0]["service.name"] == "gatehouse-test"
    assert receiver.resources[0]["deployment.environment"] == "test"
    spans = {receiver.span_attributes(s)["gen_ai.response.id"]: s for s in receiver.spans}
    ok = receiver.span_attributes(spans["req_otlp"])
    assert spans["req_otlp"].name == "chat gpt-5.5"
    assert spans["req_otlp"].kind == 3  # SPAN_KIND_CLIENT
    assert spans["req_otlp"].end_time_unix_nano - spans["req_otlp"].start_time_unix_nano == 850_000_000
    assert ok["gen_ai.operation.name"] == "chat"
    assert ok["gen_ai.request.model"] == "gpt-5.5"
    assert ok["gen_ai.usage.input_tokens"] == 100
    assert ok["gen_ai.usage.output_tokens"] == 40
    assert ok["gatehouse.usage.reasoning_tokens"] == 24
    assert receiver.span_attributes(spans["req_err"])["error.type"] == "rate_limit"
    assert spans["req_err"].status.code == 2  # STATUS_CODE_ERROR

    usage = receiver.histogram_points("gen_ai.client.token.usage")
    by_type: dict[str, list] = {}
    for attrs, total, count, _ in usage:  # one point per attribute set (the error has error.type)
        found = by_type.setdefault(attrs["gen_ai.token.type"], [0, 0])
        found[0] += total
        found[1] += count
    assert by_type["input"] == [200, 2]
    assert by_type["output"] == [80, 2]
    assert usage[0][3][:3] == [1, 4, 16]  # the conventions' bucket boundaries
    duration = receiver.histogram_points("gen_ai.client.operation.duration")
    assert sum(count for _, _, count, _ in duration) == 2
    assert duration[0][3][:2] == [0.01, 0.02]
    assert any(attrs.get("error.type") == "rate_limit" for attrs, *_ in duration)
    ttft = receiver.histogram_points("gen_ai.server.time_to_first_token")
    assert [(total, count) for _, total, count, _ in ttft] == [(pytest.approx(0.12), 1)]


@pytest.mark.django_db(transaction=True)
def test_the_gateway_exports_each_request_when_otel_variables_name_an_endpoint(demo, gateway_server, settings):
    """Through /v1 and the simulator: the settle step's telemetry reaches the receiver."""
    gateway = gateway_server.gateway
    with Receiver() as receiver:
        settings.GATEHOUSE_FINOPS = {
            **settings.GATEHOUSE_FINOPS,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_METRIC_EXPORT_INTERVAL": 200,
        }
        telemetry = Telemetry.from_settings(telemetry_settings())
        assert telemetry.otel is not None
        previous, gateway.telemetry = gateway.telemetry, telemetry
        try:
            response = httpx.post(
                f"{demo.base_url}/chat/completions",
                headers={"Authorization": f"Bearer {demo.secret}", **FAST},
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]},
                timeout=10,
            )
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            record = usage_wait(request_id)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and "gen_ai.client.token.usage" not in receiver.metrics:
                time.sleep(0.05)  # the periodic reader exports every 200 ms
        finally:
            gateway.telemetry = previous
            telemetry.shutdown()

    spans = [s for s in receiver.spans if receiver.span_attributes(s).get("gen_ai.response.id") == request_id]
    assert len(spans) == 1
    attributes = receiver.span_attributes(spans[0])
    assert spans[0].name == "chat gpt-4o-mini"
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.usage.input_tokens"] == record.input_tokens
    assert attributes["gen_ai.usage.output_tokens"] == record.output_tokens > 0
    usage = receiver.histogram_points("gen_ai.client.token.usage")
    outputs = [total for attrs, total, _, _ in usage if attrs["gen_ai.token.type"] == "output"]
    assert outputs and max(outputs) == record.output_tokens  # cumulative: the last export holds the request
    assert receiver.histogram_points("gen_ai.client.operation.duration")


def test_an_unreachable_collector_does_not_hold_the_stop_up():
    from tests.conftest import free_port

    config = OtelSettings(endpoint=f"http://127.0.0.1:{free_port()}", timeout_ms=500)
    telemetry = Telemetry.from_settings(TelemetrySettings(otel=config))
    telemetry.record(event())
    started = time.monotonic()
    telemetry.otel.shutdown(timeout=1.0)
    assert time.monotonic() - started < 2.0
