"""tinct's own metrics, served at ``/metrics`` on the main port.

Everything lives in a :class:`prometheus_client.CollectorRegistry` created by
:class:`SelfMetrics`, never in prometheus-client's global registry: each
process (and each test) builds its own, so two apps in one interpreter never
share counters. Names follow Prometheus naming and mirror the OpenTelemetry
Collector's receiver metrics (``otelcol_receiver_accepted_spans`` /
``refused_spans``) and Prometheus's own (``prometheus_http_requests_total``
with ``handler`` and ``code``).

Writer figures (pending rows, written rows, failed writes) are read from the
writer at scrape time by a custom collector, so the writer keeps plain
integer counters and never imports prometheus-client.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinct import __version__

__all__ = ["SelfMetrics", "WriterStats", "MetricsMiddleware", "PROTOCOLS"]

# The `protocol` label values of the receiver metrics.
PROTOCOLS = ("otlp_grpc", "otlp_http", "zipkin")

_BODY_BUCKETS = tuple(float(4**i * 256) for i in range(10))  # 256 B .. 64 MiB
_QUERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class WriterStats(Protocol):
    """What the metrics read from the batch writer (only ``pending_rows`` is required).

    ``written_rows`` and ``failed_writes`` are exported when the writer has them.
    """

    @property
    def pending_rows(self) -> int: ...


class _WriterCollector(Collector):
    """The batch writers' figures, one series per signal (spans, logs)."""

    def __init__(self) -> None:
        self.writers: dict[str, WriterStats] = {}

    def collect(self) -> Iterable[Metric]:
        pending = GaugeMetricFamily(
            "tinct_writer_pending_rows",
            "Rows accepted by the receivers and not yet written to the store.",
            labels=["signal"],
        )
        written = CounterMetricFamily(
            "tinct_writer_written_rows", "Rows written to the store.", labels=["signal"]
        )
        failed = CounterMetricFamily(
            "tinct_writer_failed_writes",
            "Store inserts that failed (the batch was retried or dropped, see the log).",
            labels=["signal"],
        )
        for signal, writer in sorted(self.writers.items()):
            pending.add_metric([signal], float(writer.pending_rows))
            rows: Any = getattr(writer, "written_rows", None)
            if rows is not None:
                written.add_metric([signal], rows)
            failures: Any = getattr(writer, "failed_writes", None)
            if failures is not None:
                failed.add_metric([signal], failures)
        yield from (pending, written, failed)

    def describe(self) -> Iterable[Metric]:
        return []


class _CollectionCollector(Collector):
    """The collection's failures and the store's series limit, read at scrape time."""

    def __init__(self) -> None:
        self.scheduler: Any = None
        self.store: Any = None

    def collect(self) -> Iterable[Metric]:
        failures = CounterMetricFamily(
            "tinct_collect_failures",
            "Collections that failed (target down, timeout, bad response), per target.",
            labels=["job", "instance"],
        )
        dropped = CounterMetricFamily(
            "tinct_metric_series_dropped",
            "Series refused by the per-metric series limit (each once per day), per metric.",
            labels=["metric"],
        )
        if self.scheduler is not None:
            for (job, instance), count in sorted(dict(self.scheduler.errors).items()):
                failures.add_metric([job, instance], count)
        for metric, count in sorted(dict(getattr(self.store, "dropped_series", {})).items()):
            dropped.add_metric([metric], count)
        yield from (failures, dropped)

    def describe(self) -> Iterable[Metric]:
        return []


class _RemoteWriteCollector(Collector):
    """Samples accepted and refused by ``/api/v1/write``, read at scrape time."""

    def __init__(self) -> None:
        self.api: Any = None

    def collect(self) -> Iterable[Metric]:
        accepted = CounterMetricFamily(
            "tinct_receiver_accepted_samples",
            "Samples accepted by a receiver and handed to the writer.",
            labels=["protocol"],
        )
        refused = CounterMetricFamily(
            "tinct_receiver_refused_samples",
            "Samples a receiver refused (invalid, or the writer queue was full).",
            labels=["protocol"],
        )
        if self.api is not None:
            accepted.add_metric(["remote_write"], self.api.accepted_samples)
            refused.add_metric(["remote_write"], self.api.refused_samples)
        yield from (accepted, refused)

    def describe(self) -> Iterable[Metric]:
        return []


class SelfMetrics:
    """The self-metrics of one tinct process, in their own registry.

    Incrementing is thread-safe (prometheus-client locks per child), so
    receivers may count from the event loop and from worker threads alike.
    """

    def __init__(self, *, process_collectors: bool = True) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        if process_collectors:
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)
            GCCollector(registry=reg)
        Info("tinct_build", "tinct version and Python runtime.", registry=reg).info(
            {"version": __version__, "pythonversion": platform.python_version()}
        )
        self.accepted_spans = Counter(
            "tinct_receiver_accepted_spans",
            "Spans accepted by a receiver and handed to the writer.",
            ["protocol"],
            registry=reg,
        )
        self.refused_spans = Counter(
            "tinct_receiver_refused_spans",
            "Spans a receiver could not accept (invalid, or the writer queue was full).",
            ["protocol"],
            registry=reg,
        )
        self.accepted_log_records = Counter(
            "tinct_receiver_accepted_log_records",
            "Log records accepted by a receiver and handed to the writer.",
            ["protocol"],
            registry=reg,
        )
        self.refused_log_records = Counter(
            "tinct_receiver_refused_log_records",
            "Log records a receiver could not accept (invalid, or the writer queue was full).",
            ["protocol"],
            registry=reg,
        )
        self.accepted_metric_points = Counter(
            "tinct_receiver_accepted_metric_points",
            "Metric data points accepted by a receiver and handed to the writer.",
            ["protocol"],
            registry=reg,
        )
        self.refused_metric_points = Counter(
            "tinct_receiver_refused_metric_points",
            "Metric data points a receiver could not accept (invalid, unsupported, "
            "or the writer queue was full).",
            ["protocol"],
            registry=reg,
        )
        self.request_body_bytes = Histogram(
            "tinct_receiver_request_body_bytes",
            "Size of receiver request bodies as sent (before decompression).",
            ["protocol"],
            buckets=_BODY_BUCKETS,
            registry=reg,
        )
        self.http_requests = Counter(
            "tinct_http_requests",
            "HTTP requests served, by route and status code.",
            ["server", "handler", "code"],
            registry=reg,
        )
        self.http_request_duration = Histogram(
            "tinct_http_request_duration_seconds",
            "Time to serve an HTTP request, by route.",
            ["server", "handler"],
            registry=reg,
        )
        self.grpc_requests = Counter(
            "tinct_grpc_requests",
            "gRPC calls served, by method and status code.",
            ["method", "code"],
            registry=reg,
        )
        self.store_query_duration = Histogram(
            "tinct_store_query_duration_seconds",
            "Time the store took to answer a read, by operation.",
            ["operation"],
            buckets=_QUERY_BUCKETS,
            registry=reg,
        )
        for protocol in PROTOCOLS:
            self.accepted_spans.labels(protocol)
            self.refused_spans.labels(protocol)
        for protocol in ("otlp_grpc", "otlp_http"):
            self.accepted_log_records.labels(protocol)
            self.refused_log_records.labels(protocol)
            self.accepted_metric_points.labels(protocol)
            self.refused_metric_points.labels(protocol)
        self._writers = _WriterCollector()
        reg.register(self._writers)
        self._collection = _CollectionCollector()
        reg.register(self._collection)
        self._remote_write = _RemoteWriteCollector()
        reg.register(self._remote_write)

    def watch_writer(self, writer: WriterStats, signal: str = "spans") -> None:
        """Export ``writer``'s figures under ``signal`` from now on (replacing
        a previous writer of that signal)."""
        self._writers.writers[signal] = writer

    def watch_collection(self, scheduler: Any, store: Any) -> None:
        """Export the scheduler's failure counts (its ``errors``) and the
        store's series-limit drops (its ``dropped_series``) from now on."""
        self._collection.scheduler = scheduler
        self._collection.store = store

    def watch_remote_write(self, api: Any) -> None:
        """Export ``api``'s ``accepted_samples`` / ``refused_samples`` from now on."""
        self._remote_write.api = api

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition of every metric and its content type."""
        return generate_latest(_WithoutCreated(self.registry)), CONTENT_TYPE_LATEST


class _WithoutCreated(Collector):
    """The registry minus prometheus-client's ``*_created`` series.

    Prometheus's own exposition has none, and in the text format they show up
    as one extra gauge per counter and histogram child.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for metric in self._registry.collect():
            if metric.type in ("counter", "histogram", "summary"):
                metric.samples = [s for s in metric.samples if not s.name.endswith("_created")]
            yield metric


class MetricsMiddleware:
    """ASGI middleware counting requests by route template and status code.

    The handler label is the matched route's path template (``/api/traces/
    {trace_id}``), never the raw path, so ids don't explode cardinality;
    unmatched paths count as ``other``.
    """

    def __init__(self, app: ASGIApp, metrics: SelfMetrics, server: str) -> None:
        self.app = app
        self.metrics = metrics
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            handler = _handler_of(scope)
            self.metrics.http_requests.labels(self.server, handler, str(status)).inc()
            self.metrics.http_request_duration.labels(self.server, handler).observe(
                time.perf_counter() - started
            )


def _handler_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return "other"
    return str(path) or "/"
