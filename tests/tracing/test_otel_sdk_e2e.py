"""Real OpenTelemetry SDK exporters (gRPC and HTTP) against a running `tinct up`.

What the SDK exported (captured by an in-memory exporter beside the real one
and encoded with the SDK's own OTLP encoder) must read back identical through
/api/v3/traces/{id}, and as far as Jaeger's v1 shape carries it through
/api/traces/{id}.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from grpc import Compression as GrpcCompression
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tests.otlp_compare import canonical_message, canonical_spans
from tests.servers import TinctProcess

pytestmark = pytest.mark.server

RESOURCE: dict[str, Any] = {
    "service.name": "shop-frontend",
    "service.version": "2.1.0",
    "deployment.environment.name": "test",
    "host.cpu.count": 8,
    "host.load": 0.75,
    "feature.enabled": True,
    "zones": ["eu-1a", "eu-1b"],
    "ports": [80, 443],
}


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def tinct(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TinctProcess]:
    store: list[str] = []
    if request.param == "clickhouse":
        port = request.getfixturevalue("clickhouse_port")
        store = ["--store", f"clickhouse://127.0.0.1:{port}/otel_sdk_e2e"]
    proc = TinctProcess(Path(tmp_path_factory.mktemp("tinct-e2e")), *store)
    proc.wait_ready()
    try:
        yield proc
    finally:
        assert proc.stop() == 0, "".join(proc.lines)


def _exporter(tinct: TinctProcess, transport: str) -> Any:
    kind, _, compression = transport.partition("+")
    if kind == "grpc":
        endpoint = tinct.urls["OTLP/gRPC"].removeprefix("http://")
        return GrpcSpanExporter(
            endpoint=endpoint,
            insecure=True,
            timeout=10,
            compression=GrpcCompression.Gzip if compression else None,
        )
    return HttpSpanExporter(
        endpoint=tinct.urls["OTLP/HTTP"],
        timeout=10,
        compression=HttpCompression.Gzip if compression else HttpCompression.NoCompression,
    )


class _Recording:
    """Keeps the results the real exporter returned, so a failed export fails the test."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.results: list[SpanExportResult] = []

    def export(self, spans: Any) -> SpanExportResult:
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _make_spans(provider: TracerProvider) -> None:
    tracer = provider.get_tracer(
        "tinct.tests.e2e",
        "1.2.3",
        schema_url="https://opentelemetry.io/schemas/1.26.0",
        attributes={"scope.team": "checkout", "scope.generation": 3},
    )
    linked = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
    )
    with tracer.start_as_current_span(
        "GET /orders/{id}",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.route": "/orders/{id}",
            "http.response.status_code": 200,
            "enduser.id": "42",
            "tinct.dye": "user:42",
            "tinct.sampling.probability": 0.0009765625,
            "cache.hit": False,
            "retry.ratio": -1.5e-7,
            "big.int": -(2**63),
            "tags": ["a", "b", "ü"],
            "flags": [True, False],
            "sizes": [1, 2, 3],
            "weights": [0.5, 1.25],
        },
    ) as root:
        root.add_event("cache.miss", {"key": "orders:42", "size": 12, "ratio": 0.5, "ok": False})
        root.add_event("no attributes")
        with tracer.start_as_current_span(
            "SELECT orders",
            kind=SpanKind.CLIENT,
            attributes={"db.system": "postgresql", "server.address": "db.internal"},
            links=[Link(linked, {"link.kind": "retry-of", "link.n": 7, "link.ok": True})],
        ) as child:
            child.record_exception(ValueError("boom"))
            child.set_status(Status(StatusCode.ERROR, "deadline exceeded"))
        with tracer.start_as_current_span("publish order", kind=SpanKind.PRODUCER):
            pass


def _poll(url: str, timeout: float = 2.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(url)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


@pytest.mark.parametrize("transport", ["grpc", "http", "grpc+gzip", "http+gzip"])
def test_sdk_spans_read_back_identical(tinct: TinctProcess, transport: str) -> None:
    memory = InMemorySpanExporter()
    real = _Recording(_exporter(tinct, transport))
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(real))  # type: ignore[arg-type]
    _make_spans(provider)
    provider.shutdown()
    assert real.results == [SpanExportResult.SUCCESS] * 3

    spans = memory.get_finished_spans()
    sent = encode_spans(spans)
    trace_id = format(spans[0].context.trace_id, "032x")

    v3 = _poll(f"{tinct.main}/api/v3/traces/{trace_id}")
    assert v3.status_code == 200, v3.text
    assert canonical_spans(v3.json()["result"]) == canonical_message(sent)

    v1 = _poll(f"{tinct.main}/api/traces/{trace_id}")
    [trace] = v1.json()["data"]
    assert trace["traceID"] == trace_id
    by_name = {s["operationName"]: s for s in trace["spans"]}
    assert set(by_name) == {"GET /orders/{id}", "SELECT orders", "publish order"}
    root, child = by_name["GET /orders/{id}"], by_name["SELECT orders"]
    root_span = next(s for s in spans if s.name == "GET /orders/{id}")
    assert root_span.start_time is not None and root_span.end_time is not None
    assert root["spanID"] == format(root_span.context.span_id, "016x")
    assert root["startTime"] == root_span.start_time // 1000
    assert root["duration"] == (root_span.end_time - root_span.start_time) // 1000
    assert root["references"] == []
    assert child["references"][0] == {
        "refType": "CHILD_OF",
        "traceID": trace_id,
        "spanID": root["spanID"],
    }
    assert {
        "refType": "FOLLOWS_FROM",
        "traceID": "0af7651916cd43dd8448eb211c80319c",
        "spanID": "b7ad6b7169203331",
    } in child["references"]
    tags = {t["key"]: (t["type"], t["value"]) for t in root["tags"]}
    assert tags["http.response.status_code"] == ("int64", 200)
    assert tags["cache.hit"] == ("bool", False)
    assert tags["retry.ratio"] == ("float64", -1.5e-7)
    assert tags["tinct.dye"] == ("string", "user:42")
    assert tags["span.kind"] == ("string", "server")
    child_tags = {t["key"]: (t["type"], t["value"]) for t in child["tags"]}
    assert child_tags["error"] == ("bool", True)
    assert child_tags["otel.status_description"] == ("string", "deadline exceeded")
    [event] = [
        log
        for log in root["logs"]
        if {"key": "event", "type": "string", "value": "cache.miss"} in log["fields"]
    ]
    assert {"key": "size", "type": "int64", "value": 12} in event["fields"]
    process = trace["processes"][root["processID"]]
    assert process["serviceName"] == "shop-frontend"
    assert {"key": "host.cpu.count", "type": "int64", "value": 8} in process["tags"]


def test_trace_not_found_is_404_json(tinct: TinctProcess) -> None:
    missing = "7" * 32
    v1 = httpx.get(f"{tinct.main}/api/traces/{missing}")
    assert v1.status_code == 404
    assert v1.json()["errors"] == [{"code": 404, "msg": "trace not found"}]
    v3 = httpx.get(f"{tinct.main}/api/v3/traces/{missing}")
    assert v3.status_code == 404
    assert v3.json() == {"error": {"httpCode": 404, "message": "trace not found"}}
