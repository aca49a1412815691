"""OTLP/HTTP and Zipkin receivers: status codes and bodies as the specs give them."""

from __future__ import annotations

import base64
import gzip
import json
import tracemalloc

import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.asgi import AppClient
from tests.fakes import ListWriter
from tests.tracing._codec_samples import kv
from tinct.selfmetrics import SelfMetrics
from tinct.tracing.receivers import create_otlp_http_app, create_zipkin_app, set_writer

PB = "application/x-protobuf"
JSON = "application/json"


def otlp_request(n: int = 3, *, bad: int = 0) -> ExportTraceServiceRequest:
    """``n`` valid spans of service "checkout", plus ``bad`` spans with an invalid trace id."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", "checkout"))
    ss = rs.scope_spans.add()
    for i in range(n + bad):
        span = ss.spans.add()
        span.trace_id = bytes(15) + bytes([i + 1]) if i < n else b"\x01\x02"
        span.span_id = bytes(7) + bytes([i + 1])
        span.name = f"op{i}"
        span.start_time_unix_nano = 1_700_000_000_000_000_000
        span.end_time_unix_nano = 1_700_000_000_001_000_000
    return req


def otlp_json(req: ExportTraceServiceRequest) -> bytes:
    # OTLP/JSON: hex ids, not proto3 JSON's base64.
    doc = json_format.MessageToDict(req)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId"):
                    span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(doc).encode()


@pytest.fixture
def writer() -> ListWriter:
    return ListWriter()


@pytest.fixture
def metrics() -> SelfMetrics:
    return SelfMetrics(process_collectors=False)


@pytest.fixture
def otlp(writer: ListWriter, metrics: SelfMetrics) -> AppClient:
    return AppClient(create_otlp_http_app(writer, metrics=metrics))


def test_protobuf_export(otlp: AppClient, writer: ListWriter, metrics: SelfMetrics) -> None:
    r = otlp.post(
        "/v1/traces", content=otlp_request(3).SerializeToString(), headers={"Content-Type": PB}
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == PB
    response = ExportTraceServiceResponse.FromString(r.content)
    assert not response.HasField("partial_success")
    assert writer.rows == 3
    assert writer.batches[0].column("service").to_pylist() == ["checkout"] * 3
    assert metrics.accepted_spans.labels("otlp_http")._value.get() == 3


def test_json_export_with_charset_and_gzip(otlp: AppClient, writer: ListWriter) -> None:
    body = gzip.compress(otlp_json(otlp_request(2)))
    r = otlp.post(
        "/v1/traces",
        content=body,
        headers={"Content-Type": "application/json; charset=utf-8", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(JSON)
    assert r.json() == {}
    assert writer.rows == 2


def test_partial_success_protobuf(
    otlp: AppClient, writer: ListWriter, metrics: SelfMetrics
) -> None:
    body = otlp_request(2, bad=1).SerializeToString()
    r = otlp.post("/v1/traces", content=body, headers={"Content-Type": PB})
    assert r.status_code == 200
    partial = ExportTraceServiceResponse.FromString(r.content).partial_success
    assert partial.rejected_spans == 1
    assert "trace" in partial.error_message.lower()
    assert writer.rows == 2
    assert metrics.refused_spans.labels("otlp_http")._value.get() == 1


def test_partial_success_json(otlp: AppClient) -> None:
    req = otlp_request(1, bad=2)
    doc = json.loads(otlp_json(otlp_request(1)))
    bad_spans = json.loads(otlp_json(req))["resourceSpans"][0]["scopeSpans"][0]["spans"][1:]
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"].extend(bad_spans)
    r = otlp.post("/v1/traces", content=json.dumps(doc), headers={"Content-Type": JSON})
    assert r.status_code == 200
    partial = r.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 2
    assert partial["errorMessage"]


def test_undecodable_bodies_are_400_with_status(otlp: AppClient) -> None:
    r = otlp.post("/v1/traces", content=b"\xff\xff\xff\xff", headers={"Content-Type": PB})
    assert r.status_code == 400
    status = status_pb2.Status.FromString(r.content)
    assert status.code == code_pb2.INVALID_ARGUMENT and status.message
    r = otlp.post("/v1/traces", content=b"{not json", headers={"Content-Type": JSON})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith(JSON)
    assert r.json()["code"] == code_pb2.INVALID_ARGUMENT and r.json()["message"]
    r = otlp.post(
        "/v1/traces", content=b"not gzip", headers={"Content-Type": PB, "Content-Encoding": "gzip"}
    )
    assert r.status_code == 400
    assert "gzip" in status_pb2.Status.FromString(r.content).message


def test_gzip_bomb_is_413_with_small_memory(otlp: AppClient, writer: ListWriter) -> None:
    bomb = gzip.compress(bytes(1 << 20)) * 1024  # 1 GiB of zeros in ~1 MiB
    tracemalloc.start()
    try:
        r = otlp.post(
            "/v1/traces", content=bomb, headers={"Content-Type": PB, "Content-Encoding": "gzip"}
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.status_code == 413
    assert "larger than 20971520 bytes" in status_pb2.Status.FromString(r.content).message
    assert peak < 32 * (1 << 20)  # the 20 MiB limit plus the 1 MiB body and change
    assert writer.rows == 0


def test_body_over_limit_is_413(writer: ListWriter) -> None:
    client = AppClient(create_otlp_http_app(writer, max_body_bytes=100))
    r = client.post(
        "/v1/traces", content=otlp_json(otlp_request(5)), headers={"Content-Type": JSON}
    )
    assert r.status_code == 413
    assert r.json()["message"] == "request body is larger than 100 bytes"


def test_wrong_content_type_method_and_paths(otlp: AppClient) -> None:
    r = otlp.post("/v1/traces", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert "application/x-protobuf" in status_pb2.Status.FromString(r.content).message
    r = otlp.post(
        "/v1/traces", content=b"x", headers={"Content-Type": PB, "Content-Encoding": "br"}
    )
    assert r.status_code == 415
    r = otlp.get("/v1/traces")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    # /v1/logs and /v1/metrics are served too (test_otlp_logs.py, test_metrics_receivers.py).
    assert otlp.post("/v1/profiles", content=b"", headers={"Content-Type": PB}).status_code == 404


def test_full_queue_is_503_with_retry_after(
    otlp: AppClient, writer: ListWriter, metrics: SelfMetrics
) -> None:
    writer.full = True
    r = otlp.post(
        "/v1/traces", content=otlp_request(4).SerializeToString(), headers={"Content-Type": PB}
    )
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert status_pb2.Status.FromString(r.content).code == code_pb2.UNAVAILABLE
    assert metrics.refused_spans.labels("otlp_http")._value.get() == 4


def test_not_ready_is_503_until_writer_set(writer: ListWriter) -> None:
    app = create_otlp_http_app(None)
    client = AppClient(app)
    body = otlp_request(1).SerializeToString()
    r = client.post("/v1/traces", content=body, headers={"Content-Type": PB})
    assert r.status_code == 503 and "retry-after" in r.headers
    set_writer(app, writer)
    assert client.post("/v1/traces", content=body, headers={"Content-Type": PB}).status_code == 200
    assert writer.rows == 1


# --- Zipkin -----------------------------------------------------------------

ZIPKIN_SPANS = [
    {
        "traceId": "5af7183fb1d4cf5f",
        "id": "6b221d5bc9e6496c",
        "name": "get /api",
        "timestamp": 1_700_000_000_000_000,
        "duration": 2500,
        "kind": "SERVER",
        "localEndpoint": {"serviceName": "frontend"},
        "tags": {"http.method": "GET"},
    }
]


@pytest.fixture
def zipkin(writer: ListWriter, metrics: SelfMetrics) -> AppClient:
    return AppClient(create_zipkin_app(writer, metrics=metrics))


def test_zipkin_json_is_202(zipkin: AppClient, writer: ListWriter, metrics: SelfMetrics) -> None:
    r = zipkin.post("/api/v2/spans", json=ZIPKIN_SPANS)
    assert r.status_code == 202
    assert r.content == b""
    assert writer.rows == 1
    assert writer.batches[0].column("service").to_pylist() == ["frontend"]
    r = zipkin.post(
        "/api/v2/spans",
        content=gzip.compress(json.dumps(ZIPKIN_SPANS).encode()),
        headers={"Content-Type": JSON, "Content-Encoding": "gzip"},
    )
    assert r.status_code == 202
    assert metrics.accepted_spans.labels("zipkin")._value.get() == 2


def test_zipkin_errors(zipkin: AppClient, writer: ListWriter) -> None:
    r = zipkin.post("/api/v2/spans", content=b"[{", headers={"Content-Type": JSON})
    assert r.status_code == 400
    r = zipkin.post("/api/v2/spans", content=b"\x0a\x00", headers={"Content-Type": PB})
    assert r.status_code == 415
    assert "only JSON" in r.text and "proto3" in r.text
    assert zipkin.get("/api/v2/spans").status_code == 405
    assert zipkin.post("/api/v1/spans", json=[]).status_code == 404
    writer.full = True
    r = zipkin.post("/api/v2/spans", json=ZIPKIN_SPANS)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
