"""OTLP metrics on ``/v1/metrics`` (HTTP) and ``MetricsService/Export`` (gRPC).

Status codes and bodies as OTLP gives them; the samples' content is
tests/collectors/test_otlp_metrics.py's business.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import MetricsServiceStub

from tests.asgi import AppClient
from tests.collectors.test_otlp_metrics import (
    CUMULATIVE,
    DELTA,
    SEC,
    T0,
    gauge,
    number_point,
    request,
    sum_metric,
)
from tests.fakes import ListWriter
from tinct.metrics import MetricMetadata
from tinct.selfmetrics import SelfMetrics
from tinct.tracing.grpc_receiver import METRICS_METHOD, OtlpGrpcReceiver, create_grpc_server
from tinct.tracing.receivers import (
    create_otlp_http_app,
    set_metric_metadata_sink,
    set_metric_writer,
)

PB = "application/x-protobuf"
JSON = "application/json"


class MetadataList:
    """A metadata sink keeping what it is given; ``fail`` makes it raise."""

    def __init__(self) -> None:
        self.calls: list[list[MetricMetadata]] = []
        self.fail = False

    def __call__(self, rows: list[MetricMetadata]) -> None:
        if self.fail:
            raise RuntimeError("the store is down")
        self.calls.append(list(rows))


def with_exponential(req: ExportMetricsServiceRequest, points: int) -> ExportMetricsServiceRequest:
    metric = req.resource_metrics[0].scope_metrics[0].metrics.add(name="latency", unit="s")
    metric.exponential_histogram.aggregation_temporality = CUMULATIVE
    for _ in range(points):
        metric.exponential_histogram.data_points.add(time_unix_nano=T0, count=1)
    return req


def counter_request(value: int = 7) -> ExportMetricsServiceRequest:
    return request(sum_metric("orders", number_point(value, start=T0, t=T0 + SEC), unit="{order}"))


def delta_request(value: int, start: int, end: int) -> ExportMetricsServiceRequest:
    point = number_point(value, start=T0 + start * SEC, t=T0 + end * SEC)
    return request(sum_metric("orders", point, temporality=DELTA))


def post_pb(client: AppClient, req: ExportMetricsServiceRequest) -> Any:
    return client.post("/v1/metrics", content=req.SerializeToString(), headers={"Content-Type": PB})


def values(writer: ListWriter, name: str) -> list[float]:
    return [
        row["value"]
        for batch in writer.batches
        for row in batch.to_pylist()
        if row["metric_name"] == name
    ]


@pytest.fixture
def writer() -> ListWriter:
    return ListWriter()


@pytest.fixture
def metadata() -> MetadataList:
    return MetadataList()


@pytest.fixture
def metrics() -> SelfMetrics:
    return SelfMetrics(process_collectors=False)


@pytest.fixture
def otlp(writer: ListWriter, metadata: MetadataList, metrics: SelfMetrics) -> AppClient:
    app = create_otlp_http_app(
        None, metric_writer=writer, metric_metadata_sink=metadata, metrics=metrics
    )
    return AppClient(app)


# --- OTLP/HTTP ----------------------------------------------------------------


def test_protobuf_export(
    otlp: AppClient, writer: ListWriter, metadata: MetadataList, metrics: SelfMetrics
) -> None:
    r = post_pb(otlp, counter_request())
    assert r.status_code == 200
    assert r.headers["content-type"] == PB
    assert not ExportMetricsServiceResponse.FromString(r.content).HasField("partial_success")
    assert values(writer, "orders_total") == [7.0]
    assert metadata.calls == [[MetricMetadata("orders_total", "counter", "orders help", "")]]
    assert metrics.accepted_metric_points.labels("otlp_http")._value.get() == 1


def test_metadata_is_recorded_when_it_changes(otlp: AppClient, metadata: MetadataList) -> None:
    for _ in range(2):
        body = counter_request().SerializeToString()
        assert otlp.post("/v1/metrics", content=body, headers={"Content-Type": PB}).is_success
    assert len(metadata.calls) == 1
    changed = counter_request()
    changed.resource_metrics[0].scope_metrics[0].metrics[0].description = "orders placed"
    otlp.post("/v1/metrics", content=changed.SerializeToString(), headers={"Content-Type": PB})
    assert metadata.calls[-1][0].help == "orders placed"


def test_failing_metadata_sink_keeps_the_samples(
    otlp: AppClient, writer: ListWriter, metadata: MetadataList, caplog: pytest.LogCaptureFixture
) -> None:
    metadata.fail = True
    with caplog.at_level(logging.ERROR):
        r = post_pb(otlp, counter_request())
    assert r.status_code == 200 and values(writer, "orders_total") == [7.0]
    assert "metadata" in caplog.text
    metadata.fail = False
    post_pb(otlp, counter_request())
    assert len(metadata.calls) == 1  # retried with the next request


def test_json_export_with_gzip(otlp: AppClient, writer: ListWriter) -> None:
    doc = json_format.MessageToDict(counter_request(3))
    r = otlp.post(
        "/v1/metrics",
        content=gzip.compress(json.dumps(doc).encode()),
        headers={"Content-Type": "application/json; charset=utf-8", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(JSON)
    assert r.json() == {}
    assert values(writer, "orders_total") == [3.0]


def test_partial_success(otlp: AppClient, writer: ListWriter, metrics: SelfMetrics) -> None:
    body = with_exponential(counter_request(), 3).SerializeToString()
    r = otlp.post("/v1/metrics", content=body, headers={"Content-Type": PB})
    assert r.status_code == 200
    partial = ExportMetricsServiceResponse.FromString(r.content).partial_success
    assert partial.rejected_data_points == 3
    assert "exponential" in partial.error_message
    assert values(writer, "orders_total") == [7.0]
    assert metrics.refused_metric_points.labels("otlp_http")._value.get() == 3
    assert metrics.accepted_metric_points.labels("otlp_http")._value.get() == 1
    doc = json_format.MessageToDict(with_exponential(counter_request(), 2))
    r = otlp.post("/v1/metrics", content=json.dumps(doc), headers={"Content-Type": JSON})
    assert int(r.json()["partialSuccess"]["rejectedDataPoints"]) == 2


def test_undecodable_bodies_are_400(otlp: AppClient) -> None:
    r = otlp.post("/v1/metrics", content=b"\xff\xff\xff\xff", headers={"Content-Type": PB})
    assert r.status_code == 400
    status = status_pb2.Status.FromString(r.content)
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert "ExportMetricsServiceRequest" in status.message
    r = otlp.post("/v1/metrics", content=b"{not json", headers={"Content-Type": JSON})
    assert r.status_code == 400 and r.json()["message"]


def test_body_over_limit_is_413(writer: ListWriter) -> None:
    app = create_otlp_http_app(None, metric_writer=writer, max_body_bytes=50)
    body = gzip.compress(counter_request().SerializeToString() * 4)
    r = AppClient(app).post(
        "/v1/metrics", content=body, headers={"Content-Type": PB, "Content-Encoding": "gzip"}
    )
    assert r.status_code == 413
    assert "larger than 50 bytes" in status_pb2.Status.FromString(r.content).message
    assert writer.rows == 0


def test_wrong_content_type_and_method(otlp: AppClient) -> None:
    r = otlp.post("/v1/metrics", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert "application/x-protobuf" in status_pb2.Status.FromString(r.content).message
    r = otlp.get("/v1/metrics")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_full_queue_is_503_and_the_retry_counts_once(
    otlp: AppClient, writer: ListWriter, metrics: SelfMetrics
) -> None:
    assert post_pb(otlp, delta_request(3, 0, 10)).status_code == 200
    writer.full = True
    r = post_pb(otlp, delta_request(4, 10, 20))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert status_pb2.Status.FromString(r.content).code == code_pb2.UNAVAILABLE
    assert metrics.refused_metric_points.labels("otlp_http")._value.get() == 1
    writer.full = False
    assert post_pb(otlp, delta_request(4, 10, 20)).status_code == 200  # the client's retry
    assert values(writer, "orders_total") == [3.0, 7.0]


def test_503_until_the_writer_is_set(writer: ListWriter, metadata: MetadataList) -> None:
    app = create_otlp_http_app(None)
    client = AppClient(app)
    body = counter_request().SerializeToString()
    r = client.post("/v1/metrics", content=body, headers={"Content-Type": PB})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    set_metric_writer(app, writer)
    assert client.post("/v1/metrics", content=body, headers={"Content-Type": PB}).is_success
    assert values(writer, "orders_total") == [7.0]
    set_metric_metadata_sink(app, metadata)
    client.post("/v1/metrics", content=body, headers={"Content-Type": PB})
    assert [m.metric for m in metadata.calls[0]] == ["orders_total"]


# --- OTLP/gRPC ----------------------------------------------------------------


def with_server(
    receiver: OtlpGrpcReceiver,
    body: Callable[[grpc.aio.Channel], Awaitable[Any]],
) -> Any:
    async def main() -> Any:
        server = create_grpc_server(receiver)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return await body(channel)
        finally:
            await server.stop(None)

    return asyncio.run(main())


def grpc_receiver(writer: ListWriter | None, metadata: MetadataList) -> OtlpGrpcReceiver:
    return OtlpGrpcReceiver(
        None,
        SelfMetrics(process_collectors=False),
        metric_writer=writer,
        metric_metadata_sink=metadata,
    )


def test_grpc_export_and_partial_success(writer: ListWriter, metadata: MetadataList) -> None:
    receiver = grpc_receiver(writer, metadata)

    async def body(channel: grpc.aio.Channel) -> None:
        stub = MetricsServiceStub(channel)
        ok = await stub.Export(counter_request(5))
        assert not ok.HasField("partial_success")
        partial = await stub.Export(
            with_exponential(counter_request(6), 2), compression=grpc.Compression.Gzip
        )
        assert partial.partial_success.rejected_data_points == 2
        assert "exponential" in partial.partial_success.error_message

    with_server(receiver, body)
    assert values(writer, "orders_total") == [5.0, 6.0]
    assert metadata.calls[0][0].metric == "orders_total"
    assert receiver.metrics.accepted_metric_points.labels("otlp_grpc")._value.get() == 2
    assert receiver.metrics.refused_metric_points.labels("otlp_grpc")._value.get() == 2
    assert receiver.metrics.grpc_requests.labels(METRICS_METHOD, "OK")._value.get() == 2


def test_grpc_invalid_bytes_are_invalid_argument(metadata: MetadataList) -> None:
    async def body(channel: grpc.aio.Channel) -> None:
        raw = channel.unary_unary(METRICS_METHOD)  # bytes in, bytes out
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await raw(b"\xff\xff\xff\xff")
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ExportMetricsServiceRequest" in (info.value.details() or "")

    with_server(grpc_receiver(ListWriter(), metadata), body)


def test_grpc_full_queue_is_unavailable_with_retry_info(
    writer: ListWriter, metadata: MetadataList
) -> None:
    receiver = grpc_receiver(writer, metadata)
    writer.full = True

    async def body(channel: grpc.aio.Channel) -> None:
        stub = MetricsServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Export(delta_request(4, 0, 10))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(info.value.trailing_metadata() or ())
        status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        retry = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry) and retry.retry_delay.seconds == 1
        writer.full = False
        await stub.Export(delta_request(4, 0, 10))  # the retry, counted once
        await stub.Export(delta_request(1, 10, 20))

    with_server(receiver, body)
    assert values(writer, "orders_total") == [4.0, 5.0]
    assert receiver.metrics.refused_metric_points.labels("otlp_grpc")._value.get() == 1


def test_grpc_unavailable_until_writer_set(metadata: MetadataList) -> None:
    receiver = grpc_receiver(None, metadata)
    writer = ListWriter()

    async def body(channel: grpc.aio.Channel) -> None:
        stub = MetricsServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Export(counter_request())
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        receiver.metric_writer = writer
        assert isinstance(await stub.Export(counter_request()), ExportMetricsServiceResponse)

    with_server(receiver, body)
    assert values(writer, "orders_total") == [7.0]


def test_gauge_export(otlp: AppClient, writer: ListWriter) -> None:
    req = request(gauge("room.temperature", number_point(21.5), unit="Cel"))
    r = otlp.post("/v1/metrics", content=req.SerializeToString(), headers={"Content-Type": PB})
    assert r.status_code == 200
    assert ExportMetricsServiceResponse.FromString(r.content) == ExportMetricsServiceResponse()
    assert values(writer, "room_temperature_celsius") == [21.5]
