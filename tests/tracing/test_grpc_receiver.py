"""OTLP/gRPC receiver over a real grpc.aio server on a loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.fakes import ListWriter
from tests.tracing._codec_samples import kv
from tests.tracing.test_receivers import otlp_request
from tinct.selfmetrics import SelfMetrics
from tinct.tracing.grpc_receiver import METHOD, OtlpGrpcReceiver, create_grpc_server


def with_server(
    writer: ListWriter | None,
    body: Callable[[grpc.aio.Channel, OtlpGrpcReceiver], Awaitable[Any]],
    *,
    max_message_bytes: int = 20 * 1024 * 1024,
) -> Any:
    async def main() -> Any:
        receiver = OtlpGrpcReceiver(writer, SelfMetrics(process_collectors=False))
        server = create_grpc_server(receiver, max_message_bytes=max_message_bytes)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return await body(channel, receiver)
        finally:
            await server.stop(None)

    return asyncio.run(main())


def test_export_and_partial_success() -> None:
    writer = ListWriter()

    async def body(channel: grpc.aio.Channel, receiver: OtlpGrpcReceiver) -> None:
        stub = TraceServiceStub(channel)
        ok = await stub.Export(otlp_request(3))
        assert not ok.HasField("partial_success")
        partial = await stub.Export(otlp_request(1, bad=2), compression=grpc.Compression.Gzip)
        assert partial.partial_success.rejected_spans == 2
        assert partial.partial_success.error_message
        counts = receiver.metrics.accepted_spans.labels("otlp_grpc")._value.get()
        assert counts == 4

    with_server(writer, body)
    assert writer.rows == 4


def test_invalid_bytes_are_invalid_argument() -> None:
    async def body(channel: grpc.aio.Channel, receiver: OtlpGrpcReceiver) -> None:
        raw = channel.unary_unary(METHOD)  # no serializers: bytes in, bytes out
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await raw(b"\xff\xff\xff\xff")
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details()

    with_server(ListWriter(), body)


def test_too_large_is_resource_exhausted() -> None:
    async def body(channel: grpc.aio.Channel, receiver: OtlpGrpcReceiver) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await TraceServiceStub(channel).Export(otlp_request(50))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    writer = ListWriter()
    with_server(writer, body, max_message_bytes=200)
    assert writer.rows == 0


def test_compressed_request_over_the_limit_after_decompression() -> None:
    # grpc checks the decompressed size too, so a gzip bomb is refused.
    request = otlp_request(1)
    request.resource_spans[0].resource.attributes.append(kv("padding", "0" * (2 << 20)))

    async def body(channel: grpc.aio.Channel, receiver: OtlpGrpcReceiver) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await TraceServiceStub(channel).Export(request, compression=grpc.Compression.Gzip)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    writer = ListWriter()
    with_server(writer, body, max_message_bytes=1 << 20)
    assert writer.rows == 0


def test_full_queue_is_unavailable_with_retry_info() -> None:
    writer = ListWriter()
    writer.full = True

    async def body(channel: grpc.aio.Channel, receiver: OtlpGrpcReceiver) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await TraceServiceStub(channel).Export(otlp_request(2))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(info.value.trailing_metadata() or ())
        status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        retry = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry)
        assert retry.retry_delay.seconds == 1
        assert receiver.metrics.refused_spans.labels("otlp_grpc")._value.get() == 2

    with_server(writer, body)


def test_unavailable_until_writer_set() -> None:
    async def body(channel: grpc.aio.Channel, receiver: OtlpGrpcReceiver) -> None:
        stub = TraceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Export(ExportTraceServiceRequest())
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        receiver.writer = ListWriter()
        assert isinstance(await stub.Export(otlp_request(1)), ExportTraceServiceResponse)

    with_server(None, body)
