"""OTLP logs: decoding (protobuf and OTLP/JSON), /v1/logs and LogsService/Export."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber

from tests.asgi import AppClient
from tests.fakes import ListWriter
from tests.tracing._codec_samples import kv
from tinct.errors import DecodeError
from tinct.selfmetrics import SelfMetrics
from tinct.spans import ValueType
from tinct.storage.logs import normalize_log_batch
from tinct.tracing.grpc_receiver import LOGS_METHOD, OtlpGrpcReceiver, create_grpc_server
from tinct.tracing.otlp_logs import decode_logs_json, decode_logs_protobuf
from tinct.tracing.receivers import create_otlp_http_app, set_log_writer

PB = "application/x-protobuf"
JSON = "application/json"
T0 = 1_700_000_000_000_000_000
TRACE = bytes(range(1, 17))
SPAN = bytes(range(1, 9))


def logs_request(n: int = 3, *, bad: int = 0) -> ExportLogsServiceRequest:
    """``n`` records of service "shop" (the first in a span), then ``bad`` with a bad id."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", "shop"))
    sl = rl.scope_logs.add()
    sl.scope.name = "shop.cache"
    sl.scope.version = "1.2"
    for i in range(n + bad):
        rec = sl.log_records.add()
        rec.time_unix_nano = T0 + i
        rec.observed_time_unix_nano = T0 + 1000 + i
        rec.severity_number = SeverityNumber.SEVERITY_NUMBER_DEBUG
        rec.severity_text = "DEBUG"
        rec.body.string_value = f"record {i}"
        if i == 0:
            rec.trace_id, rec.span_id, rec.flags = TRACE, SPAN, 1
            rec.attributes.append(kv("tinct.dye", "user:42"))
            rec.attributes.append(kv("n", 7))
        if i >= n:
            rec.trace_id = b"\x01\x02\x03"
    return req


def otlp_json(req: ExportLogsServiceRequest) -> bytes:
    doc = json_format.MessageToDict(req)
    for rl in doc["resourceLogs"]:
        for sl in rl["scopeLogs"]:
            for rec in sl["logRecords"]:
                for key in ("traceId", "spanId"):
                    if key in rec:
                        rec[key] = base64.b64decode(rec[key]).hex()
    return json.dumps(doc).encode()


def test_protobuf_records_become_log_rows() -> None:
    result = decode_logs_protobuf(logs_request(2).SerializeToString())
    assert result.rejected == 0 and result.message == ""
    rows = normalize_log_batch(result.batch).to_pylist()
    first, second = rows
    assert first["trace_id"] == TRACE and first["span_id"] == SPAN and first["flags"] == 1
    assert first["time_ns"] == T0 and first["observed_time_ns"] == T0 + 1000
    assert (first["severity_number"], first["severity_text"]) == (5, "DEBUG")
    assert (first["body_type"], first["body"]) == (ValueType.STRING, "record 0")
    assert first["service"] == "shop" and first["dye"] == "user:42"
    assert first["attr_keys"] == ["tinct.dye", "n"]
    assert first["attr_types"] == [ValueType.STRING, ValueType.INT]
    assert first["attr_values"] == ["user:42", "7"]
    assert (first["scope_name"], first["scope_version"]) == ("shop.cache", "1.2")
    assert first["resource_keys"] == ["service.name"]
    # A record outside any span keeps empty ids.
    assert second["trace_id"] == b"" and second["span_id"] == b"" and second["dye"] == ""


def test_json_decodes_like_protobuf() -> None:
    req = logs_request(3)
    assert (
        decode_logs_json(otlp_json(req)).batch
        == decode_logs_protobuf(req.SerializeToString()).batch
    )


def test_bad_ids_are_refused_alone_with_a_message() -> None:
    result = decode_logs_protobuf(logs_request(2, bad=2).SerializeToString())
    assert result.batch.num_rows == 2 and result.rejected == 2
    assert "log record 2 of scope 0 of resource 0: trace_id must be 16 bytes, got 3" in (
        result.message
    )
    doc = json.loads(otlp_json(logs_request(2)))
    doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["spanId"] = "not hex"
    result = decode_logs_json(json.dumps(doc).encode())
    assert result.batch.num_rows == 1 and result.rejected == 1
    assert "span_id is not a hex string" in result.message


def test_zero_ids_mean_none_and_missing_time_falls_back() -> None:
    req = logs_request(1)
    rec = req.resource_logs[0].scope_logs[0].log_records[0]
    rec.trace_id, rec.span_id = bytes(16), bytes(8)
    rec.time_unix_nano = 0
    row = decode_logs_protobuf(req.SerializeToString()).batch.to_pylist()[0]
    assert row["trace_id"] == b"" and row["span_id"] == b""
    assert row["time_ns"] == T0 + 1000  # the observed time


def test_structured_bodies_keep_their_type() -> None:
    req = logs_request(2)
    records = req.resource_logs[0].scope_logs[0].log_records
    records[0].body.CopyFrom(AnyValue(int_value=42))
    kv_body = records[1].body
    kv_body.Clear()
    kv_body.kvlist_value.values.append(kv("user", "ann"))
    rows = decode_logs_protobuf(req.SerializeToString()).batch.to_pylist()
    assert (rows[0]["body_type"], rows[0]["body"]) == (ValueType.INT, "42")
    assert rows[1]["body_type"] == ValueType.KVLIST
    assert json.loads(rows[1]["body"]) == {
        "kvlistValue": {"values": [{"key": "user", "value": {"stringValue": "ann"}}]}
    }


@pytest.mark.parametrize(
    "body",
    [b"\xff\xff\xff", b"not json", b"[]", b'{"resourceLogs": {"x": 1}}'],
)
def test_undecodable_bodies_raise(body: bytes) -> None:
    with pytest.raises(DecodeError):
        if body.startswith(b"\xff"):
            decode_logs_protobuf(body)
        else:
            decode_logs_json(body)


# --- /v1/logs -------------------------------------------------------------


def http_client(writer: ListWriter | None) -> AppClient:
    return AppClient(
        create_otlp_http_app(None, log_writer=writer, metrics=SelfMetrics(process_collectors=False))
    )


def test_http_protobuf_json_and_gzip() -> None:
    writer = ListWriter()
    metrics = SelfMetrics(process_collectors=False)
    c = AppClient(create_otlp_http_app(None, log_writer=writer, metrics=metrics))
    r = c.post(
        "/v1/logs", content=logs_request(2).SerializeToString(), headers={"content-type": PB}
    )
    assert r.status_code == 200 and r.headers["content-type"] == PB
    assert not ExportLogsServiceResponse.FromString(r.content).HasField("partial_success")
    r = c.post(
        "/v1/logs",
        content=gzip.compress(otlp_json(logs_request(1, bad=1))),
        headers={"content-type": JSON, "content-encoding": "gzip"},
    )
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedLogRecords"] == "1"
    assert writer.rows == 3
    # Counted like spans, in tinct's own metrics.
    sample = metrics.registry.get_sample_value
    labels = {"protocol": "otlp_http"}
    assert sample("tinct_receiver_accepted_log_records_total", labels) == 3
    assert sample("tinct_receiver_refused_log_records_total", labels) == 1


def test_http_errors() -> None:
    writer = ListWriter()
    c = http_client(writer)
    assert (
        c.post("/v1/logs", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    )
    assert c.post("/v1/logs", content=b"\xff\xff", headers={"content-type": PB}).status_code == 400
    assert c.get("/v1/logs").status_code == 405
    writer.full = True
    r = c.post(
        "/v1/logs", content=logs_request(1).SerializeToString(), headers={"content-type": PB}
    )
    assert r.status_code == 503 and r.headers["retry-after"]
    small = AppClient(create_otlp_http_app(None, log_writer=ListWriter(), max_body_bytes=50))
    r = small.post(
        "/v1/logs", content=logs_request(9).SerializeToString(), headers={"content-type": PB}
    )
    assert r.status_code == 413


def test_http_is_unavailable_until_a_log_writer_is_set() -> None:
    app = create_otlp_http_app(ListWriter(), metrics=SelfMetrics(process_collectors=False))
    c = AppClient(app)
    body = logs_request(1).SerializeToString()
    assert c.post("/v1/logs", content=body, headers={"content-type": PB}).status_code == 503
    set_log_writer(app, ListWriter())
    assert c.post("/v1/logs", content=body, headers={"content-type": PB}).status_code == 200


# --- LogsService/Export ------------------------------------------------------


def test_grpc_export_partial_success_and_invalid_argument() -> None:
    writer = ListWriter()

    async def main() -> Any:
        receiver = OtlpGrpcReceiver(None, SelfMetrics(process_collectors=False), log_writer=writer)
        server = create_grpc_server(receiver)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = LogsServiceStub(channel)
                ok = await stub.Export(logs_request(2))
                assert not ok.HasField("partial_success")
                partial = await stub.Export(
                    logs_request(1, bad=2), compression=grpc.Compression.Gzip
                )
                assert partial.partial_success.rejected_log_records == 2
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await channel.unary_unary(LOGS_METHOD)(b"\xff\xff\xff")
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                writer.full = True
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.Export(logs_request(1))
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await server.stop(None)

    asyncio.run(main())
    assert writer.rows == 3
