"""tinct's span export path: a lean batch processor and an OTLP/HTTP protobuf exporter.

Both sit behind the SDK's interfaces, so either can replace its SDK
counterpart (``BatchSpanProcessor``, ``OTLPSpanExporter``):

* :class:`TinctSpanProcessor` (``SpanProcessor``): ``on_end`` appends the span
  to a bounded deque and, when a batch is full, wakes the worker; that is all
  the app thread pays. A daemon worker drains the deque in batches of
  ``max_export_batch_size`` when one is full, every ``schedule_delay_seconds``
  otherwise, and on ``force_flush``/``shutdown``. A full queue drops the span
  and counts it.
* :class:`OtlpHttpSpanExporter` (``SpanExporter``): encodes a batch straight to
  ``ExportTraceServiceRequest`` bytes (:mod:`tracing.otlp_encode_spans`, about
  7 × cheaper than the SDK's encoder) and POSTs it to ``<endpoint>/v1/traces``
  as ``application/x-protobuf`` (OTLP/HTTP, https://opentelemetry.io/docs/specs/
  otlp/#otlphttp) over one keep-alive ``http.client`` connection, optionally
  gzipped. Retryable answers (429, 502, 503, 504 — OTLP/HTTP "Failures") and
  connection errors are retried with exponential backoff, honouring
  ``Retry-After`` seconds, at most ``max_retries`` times.

Background work never raises into the app: failures are logged and counted in
plain integer counters (``*_total`` attributes) that a self-metrics collector
can read.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .otlp_encode_spans import SpanEncoder

__all__ = ["OtlpHttpSpanExporter", "TinctSpanProcessor"]

logger = logging.getLogger(__name__)

_TRACES_PATH = "/v1/traces"
_RETRYABLE = frozenset({429, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS = 60.0


class OtlpHttpSpanExporter(SpanExporter):
    """OTLP/HTTP protobuf ``SpanExporter`` with its own wire encoder.

    ``export`` blocks while it sends (and retries); it is meant for one caller
    at a time, a batch processor's worker. It never raises.
    """

    def __init__(
        self,
        endpoint: str = "http://127.0.0.1:4318",
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        compression: str | None = None,
        max_retries: int = 5,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 8.0,
        url_as_is: bool = False,
    ) -> None:
        """Args:
        endpoint: base URL (``http://host:4318``); ``/v1/traces`` is appended
            unless the URL already ends with it or ``url_as_is`` is set.
        headers: extra request headers (e.g. authorization).
        timeout: socket timeout per request, seconds.
        compression: None or ``"gzip"``.
        max_retries: retries after the first attempt for a retryable failure.
        backoff_seconds: first retry delay, doubled each retry up to
            ``max_backoff_seconds``; a ``Retry-After`` answer overrides it
            (capped at 60 s).
        url_as_is: ``endpoint`` is the full traces URL, as the OTLP exporter
            spec says ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is used.

        Raises:
            ValueError: an endpoint that is not http(s)://host[:port][/path],
                an unknown compression, or negative retries/timeouts.
        """
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"endpoint {endpoint!r} must be http(s)://host[:port][/path]")
        if compression not in (None, "gzip"):
            raise ValueError(f"compression {compression!r} must be None or 'gzip'")
        if max_retries < 0 or timeout <= 0 or backoff_seconds < 0:
            raise ValueError("max_retries and backoff_seconds must be >= 0, timeout > 0")
        path = url.path.rstrip("/")
        as_is = url_as_is or path.endswith(_TRACES_PATH)
        self._path = (path or "/") if as_is else path + _TRACES_PATH
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port
        self._timeout = timeout
        self._compression = compression
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._headers = {"Content-Type": "application/x-protobuf", **(headers or {})}
        if compression:
            self._headers["Content-Encoding"] = compression
        self._encoder = SpanEncoder()
        self._conn: http.client.HTTPConnection | None = None
        self._closing = threading.Event()  # set by shutdown: stop waiting for retries
        self.exported_spans_total = 0
        self.failed_spans_total = 0
        self.failed_requests_total = 0
        self.retries_total = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode and POST ``spans``; SUCCESS once the endpoint answered 2xx."""
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            body = self._encoder.encode(spans)
            if self._compression:
                body = gzip.compress(body, compresslevel=6)
            ok = self._send(body)
        except Exception:  # the worker must survive a bad batch
            logger.exception("OTLP span export failed; %d spans dropped", len(spans))
            ok = False
        if ok:
            self.exported_spans_total += len(spans)
            return SpanExportResult.SUCCESS
        self.failed_spans_total += len(spans)
        return SpanExportResult.FAILURE

    def _send(self, body: bytes) -> bool:
        delay = self._backoff
        for attempt in range(self._max_retries + 1):
            if attempt:
                self.retries_total += 1
            try:
                status, retry_after, text = self._post(body)
            except (OSError, http.client.HTTPException) as exc:
                self._close()
                status, retry_after, text = 0, None, repr(exc)
            if 200 <= status < 300:
                return True
            self.failed_requests_total += 1
            retryable = status == 0 or status in _RETRYABLE
            if not retryable or attempt == self._max_retries:
                logger.warning(
                    "OTLP span export to %s%s failed (%s), giving up: %s",
                    self._host,
                    self._path,
                    status or "connection error",
                    text[:200],
                )
                return False
            wait = min(delay, self._max_backoff) if retry_after is None else retry_after
            delay *= 2
            if self._closing.wait(wait):  # shutting down: no more waiting
                logger.warning("OTLP span export abandoned at shutdown")
                return False
        return False

    def _post(self, body: bytes) -> tuple[int, float | None, str]:
        conn = self._conn
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = self._conn = cls(self._host, self._port, timeout=self._timeout)
        conn.request("POST", self._path, body, self._headers)
        response = conn.getresponse()
        data = response.read()  # read fully, or the connection can't be reused
        if response.will_close:
            self._close()
        status = response.status
        if 200 <= status < 300:
            return status, None, ""
        return status, _retry_after(response.getheader("Retry-After")), _text(data)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def shutdown(self) -> None:
        """Stop waiting for retries and close the connection."""
        self._closing.set()
        self._close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing buffered here: True."""
        return True


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the delta-seconds form; an HTTP date counts as absent)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_SECONDS)


def _text(data: bytes) -> str:
    return data[:200].decode("utf-8", "replace")


class TinctSpanProcessor(SpanProcessor):
    """Batches ended, sampled spans on a bounded deque for a worker thread to export.

    ``on_end`` never blocks, does no I/O and never raises; ``force_flush`` and
    ``shutdown`` block up to their timeout. The worker is a daemon thread
    started here.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Args:
        exporter: receives each batch from the worker thread.
        max_queue_size: spans held before new ones are dropped (and counted).
        max_export_batch_size: spans per ``export`` call; a full batch wakes
            the worker at once.
        schedule_delay_seconds: the longest a span waits for a partial batch.

        Raises:
            ValueError: non-positive sizes or delay, or a batch larger than the queue.
        """
        if max_queue_size <= 0 or max_export_batch_size <= 0 or schedule_delay_seconds <= 0:
            raise ValueError("max_queue_size, max_export_batch_size, schedule_delay must be > 0")
        if max_export_batch_size > max_queue_size:
            raise ValueError(
                f"max_export_batch_size {max_export_batch_size} exceeds "
                f"max_queue_size {max_queue_size}"
            )
        self._exporter = exporter
        self._max_queue = max_queue_size
        self._batch = max_export_batch_size
        self._delay = schedule_delay_seconds
        self._clock = clock
        self._queue: deque[ReadableSpan] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # flush waiters and the drop counter
        self._flush_waiters: list[threading.Event] = []
        self._shutdown = False
        self.dropped_spans_total = 0
        self.exported_spans_total = 0
        self.failed_spans_total = 0
        self._worker = threading.Thread(target=self._run, name="tinct-span-export", daemon=True)
        self._worker.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing: spans are queued when they end."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue ``span`` if sampled; drop and count it when the queue is full."""
        if self._shutdown:
            return
        ctx = span.context
        if ctx is None or not ctx.trace_flags.sampled:
            return
        queue = self._queue
        # len + append is not atomic, so a burst of threads may overshoot the
        # bound by a few spans: cheaper than a lock on every span.
        if len(queue) >= self._max_queue:
            with self._lock:
                self.dropped_spans_total += 1
            return
        queue.append(span)
        if len(queue) >= self._batch and not self._wake.is_set():
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Block until the spans queued so far are exported (or failed); False on timeout."""
        if self._shutdown or not self._worker.is_alive():
            return not self._queue
        done = threading.Event()
        with self._lock:
            self._flush_waiters.append(done)
        self._wake.set()
        return done.wait(timeout_millis / 1000)

    def shutdown(self, timeout_millis: int = 30000) -> None:
        """Export what is queued, stop the worker, then shut the exporter down."""
        if self._shutdown:
            return
        self._shutdown = True
        self._wake.set()
        self._worker.join(timeout_millis / 1000)
        try:
            self._exporter.shutdown()
        except Exception:
            logger.exception("span exporter shutdown failed")

    def _run(self) -> None:
        deadline = self._clock() + self._delay
        while True:
            try:
                self._wake.wait(max(0.0, deadline - self._clock()))
                self._wake.clear()
                with self._lock:
                    waiters, self._flush_waiters = self._flush_waiters, []
                stopping = self._shutdown
                if stopping or waiters or self._clock() >= deadline:
                    self._drain(everything=True)
                    deadline = self._clock() + self._delay
                else:
                    self._drain(everything=False)
                for waiter in waiters:
                    waiter.set()
                if stopping:
                    return
            except Exception:  # keep exporting whatever went wrong
                logger.exception("span export worker failed; continuing")

    def _drain(self, everything: bool) -> None:
        queue, size = self._queue, self._batch
        while len(queue) >= size or (everything and queue):
            batch = [queue.popleft() for _ in range(min(size, len(queue)))]
            try:
                result = self._exporter.export(batch)
            except Exception:
                logger.exception("span exporter raised; %d spans dropped", len(batch))
                result = SpanExportResult.FAILURE
            if result is SpanExportResult.SUCCESS:
                self.exported_spans_total += len(batch)
            else:
                self.failed_spans_total += len(batch)
