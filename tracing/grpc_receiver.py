"""OTLP/gRPC span, log and metric receiver (port 4317) on ``grpc.aio``.

Implements ``opentelemetry.proto.collector.trace.v1.TraceService/Export``,
``opentelemetry.proto.collector.logs.v1.LogsService/Export`` and
``opentelemetry.proto.collector.metrics.v1.MetricsService/Export`` (metrics
become Prometheus series, see :mod:`tinct.collectors.otlp_metrics`)
(https://opentelemetry.io/docs/specs/otlp/#otlpgrpc). The handler is
registered the way the generated ``add_TraceServiceServicer_to_server`` does,
but without a request deserializer: the receiver gets the raw bytes and the
codec decodes them once, straight into the span batch, instead of grpc
building a message tree first. gRPC accepts gzip-compressed requests by
itself and refuses messages over the receive limit with RESOURCE_EXHAUSTED.

Answers: OK with ``partial_success`` when spans were rejected; INVALID_ARGUMENT
for an undecodable request; UNAVAILABLE with a ``google.rpc.RetryInfo`` detail
when the writer can't take the batch (OTLP "Failures": a retryable code, and
RetryInfo says when).
"""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from tinct.collectors.otlp_metrics import decode_metrics_protobuf
from tinct.collectors.scheduler import MetadataSink
from tinct.errors import DecodeError
from tinct.selfmetrics import SelfMetrics
from tinct.tracing.bodies import MAX_BODY_BYTES
from tinct.tracing.otlp_decode import decode_protobuf
from tinct.tracing.otlp_logs import decode_logs_protobuf
from tinct.tracing.receivers import (
    RETRY_AFTER_SECONDS,
    MetricsIngest,
    Overloaded,
    SpanSink,
    logs_response,
    metrics_response,
    submit_decoded,
    submit_logs,
    submit_metrics,
)

__all__ = [
    "OtlpGrpcReceiver",
    "create_grpc_server",
    "SERVICE",
    "METHOD",
    "LOGS_SERVICE",
    "LOGS_METHOD",
    "METRICS_SERVICE",
    "METRICS_METHOD",
]

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
METHOD = f"/{SERVICE}/Export"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
LOGS_METHOD = f"/{LOGS_SERVICE}/Export"
METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
METRICS_METHOD = f"/{METRICS_SERVICE}/Export"


class OtlpGrpcReceiver:
    """The Export handlers.

    ``writer`` (spans), ``log_writer`` (logs), ``metric_writer`` (samples)
    and ``metric_metadata_sink`` (the store's ``write_metadata``) may be set
    after the server starts; a signal without its writer answers UNAVAILABLE.
    ``metrics_ingest`` holds the delta totals of the metrics service.
    """

    def __init__(
        self,
        writer: SpanSink | None,
        metrics: SelfMetrics | None = None,
        *,
        log_writer: SpanSink | None = None,
        metric_writer: SpanSink | None = None,
        metric_metadata_sink: MetadataSink | None = None,
        metrics_ingest: MetricsIngest | None = None,
    ) -> None:
        self.writer = writer
        self.log_writer = log_writer
        self.metric_writer = metric_writer
        self.metric_metadata_sink = metric_metadata_sink
        self.metrics_ingest = metrics_ingest or MetricsIngest()
        self.metrics = metrics or SelfMetrics(process_collectors=False)

    async def export(self, request: bytes, context: grpc.aio.ServicerContext) -> Any:
        """Decode and submit one ExportTraceServiceRequest (raw bytes)."""
        self.metrics.request_body_bytes.labels("otlp_grpc").observe(len(request))
        sink = self.writer
        if sink is None:
            await self._abort_unavailable(context, "tinct is starting: the store is not open yet")
        try:
            result = await asyncio.to_thread(
                submit_decoded, decode_protobuf, request, sink, self.metrics, "otlp_grpc"
            )
        except DecodeError as exc:
            await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Overloaded as exc:
            await self._abort_unavailable(context, f"tinct is overloaded, retry later: {exc}")
        self._count("OK")
        response = ExportTraceServiceResponse()
        if result.rejected or result.message:
            response.partial_success.rejected_spans = result.rejected
            response.partial_success.error_message = result.message
        return response

    async def export_logs(self, request: bytes, context: grpc.aio.ServicerContext) -> Any:
        """Decode and submit one ExportLogsServiceRequest (raw bytes)."""
        self.metrics.request_body_bytes.labels("otlp_grpc").observe(len(request))
        sink = self.log_writer
        if sink is None:
            await self._abort_unavailable(
                context, "tinct is starting: the store is not open yet", LOGS_METHOD
            )
        try:
            result = await asyncio.to_thread(
                submit_logs, decode_logs_protobuf, request, sink, self.metrics, "otlp_grpc"
            )
        except DecodeError as exc:
            await self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc), (), LOGS_METHOD)
        except Overloaded as exc:
            await self._abort_unavailable(
                context, f"tinct is overloaded, retry later: {exc}", LOGS_METHOD
            )
        self._count("OK", LOGS_METHOD)
        return logs_response(result)

    async def export_metrics(self, request: bytes, context: grpc.aio.ServicerContext) -> Any:
        """Decode and submit one ExportMetricsServiceRequest (raw bytes)."""
        self.metrics.request_body_bytes.labels("otlp_grpc").observe(len(request))
        sink = self.metric_writer
        if sink is None:
            await self._abort_unavailable(
                context, "tinct is starting: the store is not open yet", METRICS_METHOD
            )
        try:
            result = await asyncio.to_thread(
                submit_metrics,
                decode_metrics_protobuf,
                request,
                sink,
                self.metrics,
                "otlp_grpc",
                ingest=self.metrics_ingest,
                metadata_sink=self.metric_metadata_sink,
            )
        except DecodeError as exc:
            await self._abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, str(exc), (), METRICS_METHOD
            )
        except Overloaded as exc:
            await self._abort_unavailable(
                context, f"tinct is overloaded, retry later: {exc}", METRICS_METHOD
            )
        self._count("OK", METRICS_METHOD)
        return metrics_response(result)

    def _count(self, code: str, method: str = METHOD) -> None:
        self.metrics.grpc_requests.labels(method, code).inc()

    async def _abort(
        self,
        context: grpc.aio.ServicerContext,
        code: grpc.StatusCode,
        text: str,
        trailers: tuple[tuple[str, bytes], ...] = (),
        method: str = METHOD,
    ) -> NoReturn:
        self._count(code.name, method)
        await context.abort(code, text, trailing_metadata=trailers)
        raise AssertionError("grpc.aio's abort() returned")  # it always raises

    async def _abort_unavailable(
        self, context: grpc.aio.ServicerContext, text: str, method: str = METHOD
    ) -> NoReturn:
        retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=RETRY_AFTER_SECONDS))
        status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=text)
        status.details.add().Pack(retry)
        # The rich status travels in the grpc-status-details-bin trailer
        # (what grpcio-status's rpc_status.to_status produces).
        await self._abort(
            context,
            grpc.StatusCode.UNAVAILABLE,
            text,
            (("grpc-status-details-bin", status.SerializeToString()),),
            method,
        )


def create_grpc_server(
    receiver: OtlpGrpcReceiver, *, max_message_bytes: int = MAX_BODY_BYTES
) -> grpc.aio.Server:
    """A ``grpc.aio`` server serving ``receiver``; bind with ``add_insecure_port``.

    Must be called with the event loop that will run it current (grpc.aio
    binds to the running loop when started).
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ]
    )
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Export": grpc.unary_unary_rpc_method_handler(
                receiver.export,
                request_deserializer=None,
                response_serializer=ExportTraceServiceResponse.SerializeToString,
            )
        },
    )
    logs_handler = grpc.method_handlers_generic_handler(
        LOGS_SERVICE,
        {
            "Export": grpc.unary_unary_rpc_method_handler(
                receiver.export_logs,
                request_deserializer=None,
                response_serializer=ExportLogsServiceResponse.SerializeToString,
            )
        },
    )
    metrics_handler = grpc.method_handlers_generic_handler(
        METRICS_SERVICE,
        {
            "Export": grpc.unary_unary_rpc_method_handler(
                receiver.export_metrics,
                request_deserializer=None,
                response_serializer=ExportMetricsServiceResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler, logs_handler, metrics_handler))
    return server
