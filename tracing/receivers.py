"""HTTP receivers: OTLP/HTTP (port 4318: traces, logs, metrics) and Zipkin v2 (port 9411).

OTLP/HTTP follows https://opentelemetry.io/docs/specs/otlp/#otlphttp:
``POST /v1/traces`` with a binary protobuf (``application/x-protobuf``) or JSON
(``application/json``) ``ExportTraceServiceRequest``, optionally gzip; the
answer is a 200 ``ExportTraceServiceResponse`` in the request's encoding,
with ``partial_success`` when some spans were rejected. ``POST /v1/logs``
does the same for ``ExportLogsServiceRequest`` (``rejected_log_records``)
into a writer of its own, and ``POST /v1/metrics`` for
``ExportMetricsServiceRequest`` (``rejected_data_points``), translated to
Prometheus series by :mod:`tinct.collectors.otlp_metrics` into a sample
writer, with the metrics' HELP/TYPE/UNIT going to a metadata sink. Every 4xx/5xx
carries a ``google.rpc.Status`` in that encoding. Overload is 503 with
``Retry-After`` ("OTLP/HTTP Throttling"), which clients retry.

Zipkin follows its v2 API (zipkin-api ``zipkin2-api.yaml``): ``POST
/api/v2/spans`` with a JSON list of spans answers 202 Accepted with no body.

Decoding is CPU work, so it runs in a worker thread with the hand-off to the
writer; the event loop only reads the body (bounded, see
:mod:`tinct.tracing.bodies`). The writer is set once the store is open; until
then, both answer 503 so clients retry instead of losing spans.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio.to_thread
import pyarrow as pa
from anyio import CapacityLimiter
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tinct.collectors.otlp_delta import DeltaAccumulator, DeltaTransaction
from tinct.collectors.otlp_metrics import (
    MetricsDecodeResult,
    decode_metrics_json,
    decode_metrics_protobuf,
)
from tinct.collectors.scheduler import MetadataSink
from tinct.errors import DecodeError, StorageError, TooLargeError, UnsupportedMediaError
from tinct.metrics import MetricMetadata
from tinct.selfmetrics import MetricsMiddleware, SelfMetrics
from tinct.storage import InvalidBatchError
from tinct.tracing.batch import DecodeResult
from tinct.tracing.bodies import MAX_BODY_BYTES, read_body
from tinct.tracing.otlp_decode import decode_json, decode_protobuf
from tinct.tracing.otlp_logs import decode_logs_json, decode_logs_protobuf
from tinct.tracing.zipkin import decode_zipkin_json

__all__ = [
    "SpanSink",
    "MetricsIngest",
    "RETRY_AFTER_SECONDS",
    "create_otlp_http_app",
    "create_zipkin_app",
    "set_writer",
    "set_log_writer",
    "set_metric_writer",
    "set_metric_metadata_sink",
    "submit_decoded",
    "submit_logs",
    "submit_metrics",
    "logs_response",
    "metrics_response",
    "Overloaded",
]

logger = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# What a throttled client is told to wait; the writer drains its queue at
# least every max_delay, so a second is enough for room to appear.
RETRY_AFTER_SECONDS = 1
# The endpoints answer other methods themselves (405 with a body in the
# protocol's error format, rather than Starlette's plain one).
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


# Decoding is CPU-bound and mostly holds the GIL, so more decoding threads than
# cores only add GIL hand-offs and context switches. One limit for both HTTP
# receivers, instead of the thread pool's default of 40: with `tinct up` pinned
# to one core, bench.ingest measured 15.9 instead of 18.0 µs of server CPU per
# span and ~10% more spans stored per second.
_DECODE_LIMITER = CapacityLimiter(_usable_cores())


class SpanSink(Protocol):
    """Where decoded batches go: tinct.storage's BatchWriter, or a durable queue later.

    ``submit`` must not block for long; it raises a StorageError when it can't
    take the batch now (a full queue), which receivers answer with 503.
    """

    def submit(self, batch: pa.Table) -> None: ...


class Overloaded(Exception):
    """The sink refused a batch (or there is no sink yet); the client should retry."""


def set_writer(app: Starlette, writer: SpanSink | None) -> None:
    """Point a receiver app at ``writer`` (once the store is open)."""
    app.state.writer = writer


def submit_decoded(
    decode: Callable[[bytes], DecodeResult],
    body: bytes,
    sink: SpanSink,
    metrics: SelfMetrics,
    protocol: str,
) -> DecodeResult:
    """Decode ``body`` and hand the batch to ``sink``; counts accepted/refused spans.

    Blocking (CPU-bound); call from a worker thread.

    Raises:
        DecodeError: the body can't be decoded at all (or its spans don't fit
            the schema, which retrying can't fix).
        Overloaded: the sink refused the batch for now.
    """
    accepted, refused = metrics.accepted_spans, metrics.refused_spans
    return _submit(decode, body, sink, accepted, refused, protocol, "spans", "span")


def _submit(
    decode: Callable[[bytes], DecodeResult],
    body: bytes,
    sink: SpanSink,
    accepted: Counter,
    refused: Counter,
    protocol: str,
    what: str,
    schema: str,
) -> DecodeResult:
    """The receive path every signal shares: decode, submit, count."""
    result = decode(body)
    rows = result.batch.num_rows
    if result.rejected:
        refused.labels(protocol).inc(result.rejected)
    if rows:
        try:
            sink.submit(result.batch)
        except InvalidBatchError as exc:
            # The writer's own check of the schema: retrying can't help.
            refused.labels(protocol).inc(rows)
            raise DecodeError(f"{what} do not fit tinct's {schema} schema: {exc}") from exc
        except StorageError as exc:  # QueueFullError, or the writer is closing
            refused.labels(protocol).inc(rows)
            raise Overloaded(str(exc)) from exc
        accepted.labels(protocol).inc(rows)
    return result


async def _decode_in_thread(
    decode: Callable[[bytes], DecodeResult],
    body: bytes,
    sink: SpanSink,
    metrics: SelfMetrics,
    protocol: str,
) -> DecodeResult:
    """:func:`submit_decoded` in a worker thread, at most one per usable core."""
    return await anyio.to_thread.run_sync(
        submit_decoded, decode, body, sink, metrics, protocol, limiter=_DECODE_LIMITER
    )


# --- OTLP/HTTP ------------------------------------------------------------


def _otlp_media(content_type: str | None) -> str | None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if media == JSON:
        return JSON
    return None


def _encode(message: Message, media: str) -> bytes:
    if media == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def _otlp_status(
    http_status: int, code: int, text: str, media: str, headers: dict[str, str] | None = None
) -> Response:
    status = status_pb2.Status(code=code, message=text)
    return Response(_encode(status, media), http_status, headers=headers, media_type=media)


def _unavailable(media: str, text: str) -> Response:
    return _otlp_status(
        503,
        code_pb2.UNAVAILABLE,
        text,
        media,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@dataclass(frozen=True)
class _Signal:
    """What differs between the OTLP/HTTP export paths (traces, logs)."""

    request: str  # the request message's name, for error texts
    sink: str  # the app.state attribute holding the signal's sink
    decode_protobuf: Callable[..., Any]
    decode_json: Callable[..., Any]
    submit: Callable[..., Any]
    response: Callable[[Any], Message]


def _traces_response(result: DecodeResult) -> Message:
    response = ExportTraceServiceResponse()
    if result.rejected or result.message:
        # OTLP: partial_success is set only when something was rejected or
        # the server has a warning for the client.
        response.partial_success.rejected_spans = result.rejected
        response.partial_success.error_message = result.message
    return response


def logs_response(result: DecodeResult) -> ExportLogsServiceResponse:
    """The ``ExportLogsServiceResponse`` for a decoded request (partial success)."""
    response = ExportLogsServiceResponse()
    if result.rejected or result.message:
        response.partial_success.rejected_log_records = result.rejected
        response.partial_success.error_message = result.message
    return response


def submit_logs(
    decode: Callable[[bytes], DecodeResult],
    body: bytes,
    sink: SpanSink,
    metrics: SelfMetrics,
    protocol: str,
) -> DecodeResult:
    """Decode ``body`` as OTLP logs and hand the batch to ``sink``.

    Blocking (CPU-bound); call from a worker thread. Raises DecodeError and
    Overloaded like :func:`submit_decoded`, counting accepted and refused
    log records as it counts spans.
    """
    accepted, refused = metrics.accepted_log_records, metrics.refused_log_records
    return _submit(decode, body, sink, accepted, refused, protocol, "log records", "log")


class MetricsIngest:
    """What an OTLP metrics endpoint keeps between requests.

    The delta accumulator (delta sums and histograms made cumulative, see
    :mod:`tinct.collectors.otlp_delta`) and the metadata already recorded, so
    HELP/TYPE/UNIT reach the store when they change, not with every export.
    Thread-safe.

    Args:
        deltas: the accumulator; a new one when omitted (pass one to share
            it between the HTTP and gRPC receivers).
        max_metadata: metric names whose metadata is remembered.
    """

    def __init__(
        self, deltas: DeltaAccumulator | None = None, *, max_metadata: int = 100_000
    ) -> None:
        self.deltas = deltas if deltas is not None else DeltaAccumulator()
        self._lock = threading.Lock()
        self._recorded: dict[str, MetricMetadata] = {}
        self._max_metadata = max_metadata

    def record_metadata(self, rows: list[MetricMetadata], sink: MetadataSink | None) -> None:
        """Hand ``sink`` the rows that changed since they were last recorded.

        Blocking (the sink writes to the store). A failing sink is logged and
        retried with the next request; the samples are not affected.
        """
        if sink is None or not rows:
            return
        with self._lock:
            changed = [m for m in rows if self._recorded.get(m.metric) != m]
        if not changed:
            return
        try:
            sink(changed)
        except Exception:
            logger.exception("storing OTLP metric metadata failed")
            return
        with self._lock:
            if len(self._recorded) + len(changed) > self._max_metadata:
                self._recorded.clear()
            self._recorded.update((m.metric, m) for m in changed)


def metrics_response(result: MetricsDecodeResult) -> ExportMetricsServiceResponse:
    """The ``ExportMetricsServiceResponse`` for a decoded request (partial success)."""
    response = ExportMetricsServiceResponse()
    if result.rejected or result.message:
        response.partial_success.rejected_data_points = result.rejected
        response.partial_success.error_message = result.message
    return response


def submit_metrics(
    decode: Callable[[bytes, DeltaTransaction], MetricsDecodeResult],
    body: bytes,
    sink: SpanSink,
    metrics: SelfMetrics,
    protocol: str,
    *,
    ingest: MetricsIngest,
    metadata_sink: MetadataSink | None,
) -> MetricsDecodeResult:
    """Decode ``body`` as OTLP metrics, hand the samples to ``sink``, record metadata.

    Blocking (CPU-bound, and the metadata sink writes); call from a worker
    thread. Delta totals are committed only once ``sink`` took the samples,
    so a request answered 503 and retried is counted once. Data points are
    counted as accepted or refused (a histogram point is one point however
    many series it writes).

    Raises:
        DecodeError: the body can't be decoded at all (or the samples don't
            fit the schema, which retrying can't fix).
        Overloaded: the sink refused the samples for now.
    """
    accepted, refused = metrics.accepted_metric_points, metrics.refused_metric_points
    with ingest.deltas.transaction() as deltas:
        result = decode(body, deltas)
        if result.rejected:
            refused.labels(protocol).inc(result.rejected)
        if result.batch.num_rows:
            try:
                sink.submit(result.batch)
            except InvalidBatchError as exc:
                refused.labels(protocol).inc(result.points)
                raise DecodeError(f"metric points do not fit tinct's sample schema: {exc}") from exc
            except StorageError as exc:  # QueueFullError, or the writer is closing
                refused.labels(protocol).inc(result.points)
                raise Overloaded(str(exc)) from exc
        deltas.commit()
    if result.points:
        accepted.labels(protocol).inc(result.points)
    if result.rejected:
        logger.info(
            "%s: rejected %d metric data points: %s", protocol, result.rejected, result.message
        )
    ingest.record_metadata(result.metadata, metadata_sink)
    return result


_TRACES = _Signal(
    "ExportTraceServiceRequest",
    "writer",
    decode_protobuf,
    decode_json,
    submit_decoded,
    _traces_response,
)
_LOGS = _Signal(
    "ExportLogsServiceRequest",
    "log_writer",
    decode_logs_protobuf,
    decode_logs_json,
    submit_logs,
    logs_response,
)


_METRICS = _Signal(
    "ExportMetricsServiceRequest",
    "metric_writer",
    decode_metrics_protobuf,
    decode_metrics_json,
    submit_metrics,
    metrics_response,
)


async def _otlp_traces(request: Request) -> Response:
    return await _otlp_export(request, _TRACES)


async def _otlp_metrics(request: Request) -> Response:
    state = request.app.state
    submit = functools.partial(
        submit_metrics, ingest=state.metrics_ingest, metadata_sink=state.metric_metadata_sink
    )
    return await _otlp_export(request, dataclasses.replace(_METRICS, submit=submit))


async def _otlp_logs(request: Request) -> Response:
    return await _otlp_export(request, _LOGS)


async def _otlp_export(request: Request, signal: _Signal) -> Response:
    media = _otlp_media(request.headers.get("content-type"))
    if request.method != "POST":
        return _otlp_status(
            405,
            code_pb2.UNIMPLEMENTED,
            f"{request.method} is not allowed; POST an {signal.request}",
            media or PROTOBUF,
            {"Allow": "POST"},
        )
    if media is None:
        return _otlp_status(
            415,
            code_pb2.INVALID_ARGUMENT,
            f"Content-Type {request.headers.get('content-type', '')!r} is not supported; "
            f"use {PROTOBUF} or {JSON}",
            PROTOBUF,
        )
    metrics: SelfMetrics = request.app.state.metrics
    sink: SpanSink | None = getattr(request.app.state, signal.sink, None)
    if sink is None:
        return _unavailable(media, "tinct is starting: the store is not open yet")
    try:
        body = await read_body(request, request.app.state.max_body_bytes)
    except TooLargeError as exc:
        return _otlp_status(413, code_pb2.RESOURCE_EXHAUSTED, str(exc), media)
    except UnsupportedMediaError as exc:
        return _otlp_status(415, code_pb2.INVALID_ARGUMENT, str(exc), media)
    except DecodeError as exc:
        return _otlp_status(400, code_pb2.INVALID_ARGUMENT, str(exc), media)
    metrics.request_body_bytes.labels("otlp_http").observe(body.wire_bytes)
    decode = signal.decode_protobuf if media == PROTOBUF else signal.decode_json
    try:
        result = await anyio.to_thread.run_sync(
            signal.submit, decode, body.data, sink, metrics, "otlp_http", limiter=_DECODE_LIMITER
        )
    except DecodeError as exc:
        return _otlp_status(400, code_pb2.INVALID_ARGUMENT, str(exc), media)
    except Overloaded as exc:
        return _unavailable(media, f"tinct is overloaded, retry later: {exc}")
    return Response(_encode(signal.response(result), media), 200, media_type=media)


def create_otlp_http_app(
    writer: SpanSink | None,
    *,
    log_writer: SpanSink | None = None,
    metric_writer: SpanSink | None = None,
    metric_metadata_sink: MetadataSink | None = None,
    metrics_ingest: MetricsIngest | None = None,
    metrics: SelfMetrics | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The OTLP/HTTP receiver: ``/v1/traces``, ``/v1/logs`` and ``/v1/metrics``.

    Args:
        writer: where span batches go; ``None`` answers 503 until :func:`set_writer`.
        log_writer: where log batches (LOG_SCHEMA) go; ``None`` answers 503
            until :func:`set_log_writer`.
        metric_writer: where sample batches (SAMPLE_SCHEMA) go; ``None``
            answers 503 until :func:`set_metric_writer`.
        metric_metadata_sink: takes the metrics' HELP/TYPE/UNIT when they
            change (the store's ``write_metadata``); ``None`` records none
            until :func:`set_metric_metadata_sink`.
        metrics_ingest: the delta totals and recorded metadata (a new
            :class:`MetricsIngest` when omitted).
        metrics: the process's self-metrics (a private set when omitted).
        max_body_bytes: limit on the body, as sent and after decompression.
    """
    app = _receiver_app(
        {"/v1/traces": _otlp_traces, "/v1/logs": _otlp_logs, "/v1/metrics": _otlp_metrics},
        "otlp_http",
        writer,
        metrics,
        max_body_bytes,
    )
    set_log_writer(app, log_writer)
    set_metric_writer(app, metric_writer)
    set_metric_metadata_sink(app, metric_metadata_sink)
    app.state.metrics_ingest = metrics_ingest or MetricsIngest()
    return app


def set_log_writer(app: Starlette, writer: SpanSink | None) -> None:
    """Point an OTLP/HTTP receiver's ``/v1/logs`` at ``writer`` (once the store is open)."""
    app.state.log_writer = writer


def set_metric_writer(app: Starlette, writer: SpanSink | None) -> None:
    """Point an OTLP/HTTP receiver's ``/v1/metrics`` at a sample writer
    (``sample_batch_writer(store)``, once the store is open)."""
    app.state.metric_writer = writer


def set_metric_metadata_sink(app: Starlette, sink: MetadataSink | None) -> None:
    """Give an OTLP/HTTP receiver's ``/v1/metrics`` somewhere to record
    metric metadata (the store's ``write_metadata``)."""
    app.state.metric_metadata_sink = sink


def _receiver_app(
    endpoints: dict[str, Callable[[Request], Awaitable[Response]]],
    server: str,
    writer: SpanSink | None,
    metrics: SelfMetrics | None,
    max_body_bytes: int,
) -> Starlette:
    metrics = metrics or SelfMetrics(process_collectors=False)
    app = Starlette(
        routes=[Route(path, fn, methods=_ALL_METHODS) for path, fn in endpoints.items()],
        middleware=[Middleware(MetricsMiddleware, metrics=metrics, server=server)],
    )
    app.state.metrics = metrics
    app.state.writer = writer
    app.state.max_body_bytes = max_body_bytes
    return app


# --- Zipkin ---------------------------------------------------------------


async def _zipkin_spans(request: Request) -> Response:
    if request.method != "POST":
        return PlainTextResponse(
            f"{request.method} is not allowed; POST a JSON list of Zipkin v2 spans\n",
            405,
            headers={"Allow": "POST"},
        )
    media = (request.headers.get("content-type") or JSON).split(";", 1)[0].strip().lower()
    if media != JSON:
        hint = " (Zipkin proto3 is not supported)" if "protobuf" in media else ""
        return PlainTextResponse(
            f"Content-Type {media!r} is not supported{hint}: only JSON "
            f"({JSON}) Zipkin v2 spans are accepted\n",
            415,
        )
    metrics: SelfMetrics = request.app.state.metrics
    sink: SpanSink | None = request.app.state.writer
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if sink is None:
        return PlainTextResponse("tinct is starting: the store is not open yet\n", 503, retry)
    try:
        body = await read_body(request, request.app.state.max_body_bytes)
    except TooLargeError as exc:
        return PlainTextResponse(f"{exc}\n", 413)
    except UnsupportedMediaError as exc:
        return PlainTextResponse(f"{exc}\n", 415)
    except DecodeError as exc:
        return PlainTextResponse(f"{exc}\n", 400)
    metrics.request_body_bytes.labels("zipkin").observe(body.wire_bytes)
    try:
        result = await _decode_in_thread(decode_zipkin_json, body.data, sink, metrics, "zipkin")
    except DecodeError as exc:
        return PlainTextResponse(f"{exc}\n", 400)
    except Overloaded as exc:
        return PlainTextResponse(f"tinct is overloaded, retry later: {exc}\n", 503, retry)
    if result.rejected:
        # Zipkin's API has no partial-success answer; the count is in the
        # refused-spans metric and the reason in the log.
        logger.info("zipkin: rejected %d spans: %s", result.rejected, result.message)
    return Response(status_code=202)


def create_zipkin_app(
    writer: SpanSink | None,
    *,
    metrics: SelfMetrics | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The Zipkin v2 receiver: ``POST /api/v2/spans`` (JSON)."""
    return _receiver_app(
        {"/api/v2/spans": _zipkin_spans}, "zipkin", writer, metrics, max_body_bytes
    )
