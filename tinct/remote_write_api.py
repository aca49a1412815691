"""Prometheus remote write on the main port: ``POST /api/v1/write``.

A Prometheus (or vmagent, Grafana Agent, the OpenTelemetry Collector's
``prometheusremotewrite`` exporter) configured with::

    remote_write:
      - url: http://tinct:3000/api/v1/write

sends its samples here (remote write 1.0,
https://prometheus.io/docs/specs/remote_write_spec/). Answers follow the
spec and Prometheus's own receiver:

* 204 No Content: everything stored (Prometheus answers 204).
* 400: the body is not snappy or not a ``WriteRequest``, or some series
  were refused (no ``__name__``, a duplicate or invalid label name, native
  histograms, samples too far ahead); the valid series of the request are
  stored anyway. Senders do not retry a 4xx, and retrying cannot help.
* 413: the body, as sent or decompressed, is over the limit (32 MiB
  decompressed by default); the message names it.
* 415: a Content-Type other than ``application/x-protobuf`` (remote write
  2.0's ``proto=io.prometheus.write.v2.Request`` included) or a
  Content-Encoding other than ``snappy``. Missing headers are taken to be
  those, as Prometheus takes them.
* 503 with ``Retry-After``: the store is not open yet, or the sample
  writer's queue is full. Nothing of the request is kept then, and the
  sender retries it; samples already accepted are never dropped to make
  room.

Every error is plain text naming the field or limit. What is stored is
decided by :mod:`tinct.collectors.remote_write`. Decoding runs in a worker
thread (at most one per usable core: it is CPU-bound and mostly holds the
GIL), with the hand-off to the writer; the event loop only reads the
bounded body. Metadata (HELP/TYPE/UNIT, which Prometheus resends every
minute) goes to the metadata sink when it changed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from tinct.collectors.remote_write import (
    MAX_AHEAD_MS,
    MAX_DECODED_BYTES,
    InvalidSeriesError,
    RemoteWriteDecoder,
    RemoteWriteError,
    check_headers,
    max_wire_bytes,
)
from tinct.collectors.scheduler import MetadataSink, SampleSink
from tinct.errors import DecodeError, StorageError, TooLargeError
from tinct.metrics import MetricMetadata
from tinct.selfmetrics import SelfMetrics
from tinct.storage import InvalidBatchError
from tinct.tracing.bodies import BoundedDecoder

__all__ = ["RemoteWriteAPI", "REMOTE_WRITE_PATH", "RETRY_AFTER_SECONDS"]

logger = logging.getLogger(__name__)

REMOTE_WRITE_PATH = "/api/v1/write"
# The batch writer drains its queue at least every max_delay (0.5 s), so a
# second is enough for room to appear (as the OTLP receivers tell clients).
RETRY_AFTER_SECONDS = 1
# Families whose metadata is remembered, to write only what changed.
_METADATA_REMEMBERED = 100_000


class _Unavailable(Exception):
    """The sink can't take the batch now; the sender should retry (503)."""


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(f"{text}\n", status, headers=headers)


def _unavailable(text: str) -> Response:
    return _text(503, text, {"Retry-After": str(RETRY_AFTER_SECONDS)})


class RemoteWriteAPI:
    """The remote write receiver route.

    Args:
        get_writer: returns where sample batches go (a sample BatchWriter's
            ``submit``), or ``None`` while the store opens (503).
        get_metadata_sink: returns where changed metadata goes (the store's
            ``write_metadata``), or ``None`` to drop metadata.
        metrics: where request body sizes are observed
            (``tinct_receiver_request_body_bytes{protocol="remote_write"}``).
        max_decoded_bytes: limit on a decompressed body; the limit on the
            body as sent follows from it (snappy's worst case).
        clock: Unix seconds; samples more than 10 minutes after it are refused.

    Attributes (plain ints for self-metrics, read without locking):
        accepted_samples: samples handed to the writer.
        refused_samples: samples refused: invalid series, native histogram
            samples, samples too far ahead, and the samples of requests
            answered 503 because the writer was full. (Bodies that can't be
            decoded at all, or arrive before the store is open, are not
            counted: their samples are unknown.)

    Threading: requests run on the event loop, decoding in worker threads.
    """

    def __init__(
        self,
        get_writer: Callable[[], SampleSink | None],
        get_metadata_sink: Callable[[], MetadataSink | None],
        metrics: SelfMetrics | None = None,
        *,
        max_decoded_bytes: int = MAX_DECODED_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._get_writer = get_writer
        self._get_metadata_sink = get_metadata_sink
        self._metrics = metrics
        self._max_decoded = max_decoded_bytes
        self._max_wire = max_wire_bytes(max_decoded_bytes)
        self._clock = clock
        self._decoder = RemoteWriteDecoder()
        self._limiter: CapacityLimiter | None = None
        self._lock = threading.Lock()
        self._metadata: dict[str, MetricMetadata] = {}
        self.accepted_samples = 0
        self.refused_samples = 0

    def routes(self) -> list[BaseRoute]:
        """The route, to include in the main app."""
        return [Route(REMOTE_WRITE_PATH, self._write, methods=["POST"])]

    async def _write(self, request: Request) -> Response:
        headers = request.headers
        try:
            check_headers(headers.get("content-type"), headers.get("content-encoding"))
        except RemoteWriteError as exc:
            return _text(exc.status, str(exc))
        sink = self._get_writer()
        if sink is None:
            return _unavailable("tinct is starting: the store is not open yet; retry later")
        try:
            body = await self._read(request)
        except TooLargeError as exc:
            return _text(413, f"{exc} (max_decoded_bytes {self._max_decoded})")
        except DecodeError as exc:
            return _text(400, str(exc))
        if self._metrics is not None:
            self._metrics.request_body_bytes.labels("remote_write").observe(len(body))
        if self._limiter is None:
            self._limiter = CapacityLimiter(_usable_cores())
        try:
            problem = await anyio.to_thread.run_sync(
                self._ingest, body, sink, self._get_metadata_sink(), limiter=self._limiter
            )
        except RemoteWriteError as exc:
            return _text(exc.status, str(exc))
        except _Unavailable as exc:
            return _unavailable(f"tinct is overloaded, retry later: {exc}")
        if problem:
            return _text(400, problem)
        return Response(status_code=204)

    async def _read(self, request: Request) -> bytes:
        """The body as sent (still snappy), at most the wire limit."""
        # Snappy is decoded later, in the worker thread; the body is read as
        # it came ("identity" to the bounded reader).
        reader = BoundedDecoder(None, self._max_wire)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self._max_wire:
            raise TooLargeError(f"request body is larger than {self._max_wire} bytes")
        async for chunk in request.stream():
            reader.feed(chunk)
        return reader.finish()

    def _ingest(self, body: bytes, sink: SampleSink, metadata_sink: MetadataSink | None) -> str:
        """Decode and hand over; returns the 400 text when series were refused.

        Blocking (CPU-bound); runs in a worker thread.

        Raises:
            RemoteWriteError: the body can't be decoded (its status says why).
            _Unavailable: the writer refused the batch for now.
        """
        problem = ""
        max_timestamp_ms = int(self._clock() * 1000) + MAX_AHEAD_MS
        try:
            table, metadata = self._decoder.decode(
                body, max_decoded_bytes=self._max_decoded, max_timestamp_ms=max_timestamp_ms
            )
        except InvalidSeriesError as exc:
            table, metadata, problem = exc.samples, exc.metadata, str(exc)
            self._count(refused=exc.refused)
        rows = table.num_rows
        if rows:
            try:
                sink(table)
            except InvalidBatchError as exc:  # the writer's own schema check
                self._count(refused=rows)
                raise RemoteWriteError(f"samples do not fit tinct's sample schema: {exc}") from exc
            except StorageError as exc:  # QueueFullError, or the writer is closing
                self._count(refused=rows)
                raise _Unavailable(str(exc)) from exc
            self._count(accepted=rows)
        if metadata and metadata_sink is not None:
            self._write_metadata(metadata, metadata_sink)
        return problem

    def _write_metadata(self, metadata: list[MetricMetadata], sink: MetadataSink) -> None:
        """Pass on the families whose metadata changed. A failure is logged and
        forgotten: Prometheus sends all metadata again every minute."""
        with self._lock:
            changed = [m for m in metadata if self._metadata.get(m.metric) != m]
            if len(self._metadata) + len(changed) > _METADATA_REMEMBERED:
                self._metadata.clear()
            for m in changed:
                self._metadata[m.metric] = m
        if not changed:
            return
        try:
            sink(changed)
        except Exception:
            logger.exception("remote write: storing metadata of %d families failed", len(changed))
            with self._lock:
                for m in changed:
                    self._metadata.pop(m.metric, None)

    def _count(self, *, accepted: int = 0, refused: int = 0) -> None:
        with self._lock:
            self.accepted_samples += accepted
            self.refused_samples += refused
