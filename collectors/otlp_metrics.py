"""Decode OTLP metric exports into Prometheus series (:data:`~tinct.metrics.SAMPLE_SCHEMA`).

tinct stores metrics as Prometheus does, so an ``ExportMetricsServiceRequest``
(opentelemetry-proto ``collector/metrics/v1``) is translated by the
specification's "Prometheus and OpenMetrics Compatibility" ("OTLP Metric
points to Prometheus"), the way the Collector's ``prometheusremotewrite``
translator and Prometheus's own OTLP receiver apply it:

* names by :func:`tinct.naming.prometheus_name` (unit word, ``_total`` for
  monotonic sums, ``ratio`` for gauges in ``1``); labels by
  :mod:`tinct.collectors.otlp_labels`, plus ``job``/``instance`` from the
  resource and ``otel_scope_name``/``otel_scope_version`` from the scope;
  the resource's other attributes become one ``target_info`` series;
* Gauge → gauge; monotonic Sum → counter; non-monotonic Sum → gauge;
  Histogram (explicit buckets) → ``_bucket{le=...}`` (cumulative across
  buckets, ``+Inf`` last), ``_sum`` (when sent) and ``_count``; Summary →
  ``{quantile=...}``, ``_sum`` and ``_count``;
* delta sums and histograms are made cumulative by a
  :class:`~tinct.collectors.otlp_delta.DeltaAccumulator` the receiver owns
  (non-monotonic delta sums too, which the spec would drop: their running
  total is the up-down counter's value, as the Collector's
  ``deltatocumulative`` processor computes it);
* ExponentialHistogram would be a Prometheus native histogram, which tinct
  does not store yet: its points are refused with a reason, not guessed at;
* a point flagged ``FLAG_NO_RECORDED_VALUE`` becomes Prometheus's staleness
  marker on every series it would have written;
* ``time_unix_nano`` becomes milliseconds (the receive time when it is 0).

The samples are stored as sent: no ``layer`` or other label is added.
Invalid points are refused one by one (OTLP partial success) with a message
naming the metric and the field; the rest of the request is kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import pyarrow as pa
from google.protobuf import json_format, message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from tinct.collectors.otlp_delta import DeltaAccumulator, DeltaTransaction, Running
from tinct.collectors.otlp_labels import attribute_labels, format_float, resource_labels
from tinct.errors import DecodeError
from tinct.metrics import NAME_LABEL, STALE_NAN, MetricMetadata, SampleBuilder, sorted_labels
from tinct.naming import prometheus_name, prometheus_unit

__all__ = [
    "MetricsDecodeResult",
    "decode_metrics_json",
    "decode_metrics_protobuf",
    "decode_metrics_request",
]

_MAX_REASONS = 10
_NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
_CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
_TARGET_INFO = MetricMetadata("target_info", "gauge", "Target metadata")

Deltas: TypeAlias = DeltaAccumulator | DeltaTransaction


@dataclass(frozen=True)
class MetricsDecodeResult:
    """A decoded metrics request.

    Attributes:
        batch: the samples, a SAMPLE_SCHEMA table.
        metadata: HELP/TYPE/UNIT of each metric with samples in ``batch``.
        points: OTLP data points turned into samples.
        rejected: data points refused (``rejected_data_points``).
        message: why, naming the first ten refusals ("" when none).
    """

    batch: pa.Table
    metadata: list[MetricMetadata]
    points: int
    rejected: int
    message: str


def _metric_name(metric: metrics_pb2.Metric, *, counter: bool = False, gauge: bool = False) -> str:
    name = prometheus_name(metric.name, metric.unit, counter=counter, gauge=gauge)
    # Prometheus's BuildCompliantMetricName: a name can't start with a digit.
    return "_" + name if name[:1].isdigit() else name


def _type_hint(metric: metrics_pb2.Metric, default: str) -> str:
    """The spec's ``prometheus.type`` metadata hint: ``unknown`` stays unknown."""
    for kv in metric.metadata:
        if kv.key == "prometheus.type" and kv.value.string_value == "unknown":
            return "unknown"
    return default


class _Request:
    """One request's decoding: the samples, metadata and refusals so far."""

    def __init__(self, deltas: DeltaTransaction, now_ns: Callable[[], int]) -> None:
        self.builder = SampleBuilder(max_cached=100_000)
        self.deltas = deltas
        self.now_ns = now_ns
        self.received_ns = 0
        self.metadata: dict[str, MetricMetadata] = {}
        self.targets: dict[tuple[tuple[str, str], ...], int] = {}
        self.points = 0
        self.rejected = 0
        self.reasons: list[str] = []
        self.newest_ms = -1  # of the current resource

    def refuse(self, count: int, where: str, problem: str) -> None:
        self.rejected += count
        if len(self.reasons) < _MAX_REASONS:
            self.reasons.append(f"{where}: {problem}")

    def timestamp_ms(self, time_ns: int) -> int:
        if not time_ns:
            self.received_ns = self.received_ns or self.now_ns()
            time_ns = self.received_ns
        ms = time_ns // 1_000_000
        self.newest_ms = max(self.newest_ms, ms)
        return ms

    def add(self, labels: dict[str, str], name: str, ts: int, value: float) -> None:
        labels[NAME_LABEL] = name
        self.builder.add(sorted_labels(labels), ts, value)

    # --- resources and metrics -------------------------------------------

    def resource(self, rm: metrics_pb2.ResourceMetrics, ri: int) -> None:
        target, info = resource_labels(rm.resource.attributes)
        self.newest_ms = -1
        for si, sm in enumerate(rm.scope_metrics):
            context = dict(target)
            if sm.scope.name:
                context["otel_scope_name"] = sm.scope.name
            if sm.scope.version:
                context["otel_scope_version"] = sm.scope.version
            for mi, metric in enumerate(sm.metrics):
                where = f"metric {metric.name!r} ({mi} of scope {si} of resource {ri})"
                self.metric(metric, context, where)
        if info and self.newest_ms >= 0:
            # One target_info per job/instance, at the resource's newest sample
            # (the Collector's addResourceTargetInfo).
            key = sorted_labels({**info, NAME_LABEL: _TARGET_INFO.metric})
            self.targets[key] = max(self.targets.get(key, -1), self.newest_ms)

    def metric(self, metric: metrics_pb2.Metric, context: dict[str, str], where: str) -> None:
        kind = metric.WhichOneof("data")
        if kind is None:
            return
        points: Any = getattr(metric, kind).data_points
        if kind == "exponential_histogram":
            self.refuse(
                len(points),
                where,
                "exponential histograms are not stored yet (they need Prometheus native "
                "histograms); send explicit-bucket histograms instead",
            )
            return
        if not prometheus_name(metric.name):
            self.refuse(len(points), where, "the name is empty once made a Prometheus name")
            return
        delta = False
        if kind in ("sum", "histogram"):
            temporality = getattr(metric, kind).aggregation_temporality
            if temporality not in (_DELTA, _CUMULATIVE):
                self.refuse(len(points), where, f"{kind}.aggregation_temporality is unspecified")
                return
            delta = temporality == _DELTA
        before = self.points
        unit = prometheus_unit(metric.unit, gauge=kind == "gauge")
        if kind == "gauge":
            name, type_ = _metric_name(metric, gauge=True), _type_hint(metric, "gauge")
            self.numbers(points, name, context, where, delta)
        elif kind == "sum":
            monotonic = metric.sum.is_monotonic
            name = _metric_name(metric, counter=monotonic)
            type_ = "counter" if monotonic else _type_hint(metric, "gauge")
            self.numbers(points, name, context, where, delta)
        elif kind == "histogram":
            name, type_ = _metric_name(metric), "histogram"
            self.histograms(points, name, context, where, delta)
        else:
            name, type_ = _metric_name(metric), "summary"
            self.summaries(points, name, context, where)
        if self.points > before:
            self.metadata[name] = MetricMetadata(name, type_, metric.description, unit)

    def each(
        self, points: Iterable[Any], context: dict[str, str], where: str
    ) -> Iterator[tuple[str, Any, dict[str, str]]]:
        """``(where, point, labels)`` of the points whose attributes are labels
        (the resource's and scope's labels win over them); refuses the others."""
        for i, point in enumerate(points):
            labels, problem = attribute_labels(point.attributes)
            if problem:
                self.refuse(1, f"{where} point {i}", problem)
                continue
            labels.update(context)
            yield f"{where} point {i}", point, labels

    # --- data points ----------------------------------------------------

    def numbers(
        self,
        points: Iterable[metrics_pb2.NumberDataPoint],
        name: str,
        context: dict[str, str],
        where: str,
        delta: bool,
    ) -> None:
        for at, point, labels in self.each(points, context, where):
            value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
            stale = bool(point.flags & _NO_RECORDED_VALUE)
            if delta:
                key: Hashable = ("sum", tuple(sorted({**labels, NAME_LABEL: name}.items())))
                if stale:
                    self.deltas.forget(key)
                else:
                    running = self.delta(key, point, at, value)
                    if running is None:
                        continue
                    value = running.value
            ts = self.timestamp_ms(point.time_unix_nano)
            self.add(labels, name, ts, STALE_NAN if stale else float(value))
            self.points += 1

    def delta(
        self,
        key: Hashable,
        point: Any,
        where: str,
        value: float,
        hist: tuple[int, float | None, tuple[float, ...], tuple[int, ...]] | None = None,
    ) -> Running | None:
        """The running total after adding a delta point, or None when it is refused."""
        start, end = point.start_time_unix_nano, point.time_unix_nano
        if start and end and start > end:
            self.refuse(1, where, "start_time_unix_nano is after time_unix_nano")
            return None
        if hist is None:
            running = self.deltas.add_sum(key, start, end, value)
        else:
            running = self.deltas.add_histogram(key, start, end, *hist)
        if isinstance(running, str):
            self.refuse(1, where, running)
            return None
        return running

    def histograms(
        self,
        points: Iterable[metrics_pb2.HistogramDataPoint],
        name: str,
        context: dict[str, str],
        where: str,
        delta: bool,
    ) -> None:
        for at, point, labels in self.each(points, context, where):
            bounds, buckets = tuple(point.explicit_bounds), tuple(point.bucket_counts)
            problem = _bucket_problem(bounds, buckets)
            if problem:
                self.refuse(1, at, problem)
                continue
            count: float = point.count
            total = point.sum if point.HasField("sum") else None
            stale = bool(point.flags & _NO_RECORDED_VALUE)
            if delta:
                key = ("histogram", tuple(sorted({**labels, NAME_LABEL: name}.items())))
                if stale:
                    self.deltas.forget(key)
                else:
                    hist = (point.count, total, bounds, buckets)
                    running = self.delta(key, point, at, 0.0, hist)
                    if running is None:
                        continue
                    count, total, buckets = running.value, running.total, running.buckets
            ts = self.timestamp_ms(point.time_unix_nano)
            if total is not None:
                self.add(dict(labels), name + "_sum", ts, STALE_NAN if stale else total)
            self.add(dict(labels), name + "_count", ts, STALE_NAN if stale else float(count))
            cumulative = 0
            for bound, n in zip(bounds, buckets, strict=False):
                cumulative += n
                le = {**labels, "le": format_float(bound)}
                self.add(le, name + "_bucket", ts, STALE_NAN if stale else float(cumulative))
            inf = {**labels, "le": "+Inf"}
            self.add(inf, name + "_bucket", ts, STALE_NAN if stale else float(count))
            self.points += 1

    def summaries(
        self,
        points: Iterable[metrics_pb2.SummaryDataPoint],
        name: str,
        context: dict[str, str],
        where: str,
    ) -> None:
        for at, point, labels in self.each(points, context, where):
            bad = [q.quantile for q in point.quantile_values if not 0.0 <= q.quantile <= 1.0]
            if bad:
                self.refuse(1, at, f"quantile {bad[0]} is not between 0 and 1")
                continue
            stale = bool(point.flags & _NO_RECORDED_VALUE)
            ts = self.timestamp_ms(point.time_unix_nano)
            self.add(dict(labels), name + "_sum", ts, STALE_NAN if stale else point.sum)
            self.add(dict(labels), name + "_count", ts, STALE_NAN if stale else float(point.count))
            for q in point.quantile_values:
                quantile = {**labels, "quantile": format_float(q.quantile)}
                self.add(quantile, name, ts, STALE_NAN if stale else q.value)
            self.points += 1

    def result(self) -> MetricsDecodeResult:
        for labels, ts in self.targets.items():
            self.builder.add(labels, ts, 1.0)
        if self.targets:
            self.metadata[_TARGET_INFO.metric] = _TARGET_INFO
        more = self.rejected - len(self.reasons)
        text = "; ".join(self.reasons) + (f"; and {more} more" if more > 0 else "")
        metadata = sorted(self.metadata.values(), key=lambda m: m.metric)
        return MetricsDecodeResult(self.builder.take(), metadata, self.points, self.rejected, text)


def _bucket_problem(bounds: tuple[float, ...], buckets: tuple[int, ...]) -> str:
    """Why a histogram point's buckets can't be stored ("" when they can)."""
    if buckets and len(buckets) != len(bounds) + 1:
        return (
            f"bucket_counts has {len(buckets)} entries for {len(bounds)} explicit_bounds; "
            "it must have one more than explicit_bounds, or none"
        )
    if any(not -float("inf") < b < float("inf") for b in bounds) or any(
        a >= b for a, b in zip(bounds, bounds[1:], strict=False)
    ):
        return "explicit_bounds must be finite and strictly increasing"
    return ""


def decode_metrics_request(
    req: ExportMetricsServiceRequest,
    deltas: Deltas,
    *,
    now_ns: Callable[[], int] = time.time_ns,
) -> MetricsDecodeResult:
    """Decode a parsed request (e.g. a gRPC servicer's argument).

    Args:
        req: the request.
        deltas: running totals for delta series. A transaction is left for
            the caller to commit (once the samples are safely handed on); an
            accumulator is updated at once.
        now_ns: receive time, for points without ``time_unix_nano``.

    Returns:
        The samples, metadata and refusals. CPU-bound; no I/O.
    """
    if isinstance(deltas, DeltaAccumulator):
        with deltas.transaction() as txn:
            result = decode_metrics_request(req, txn, now_ns=now_ns)
            txn.commit()
        return result
    request = _Request(deltas, now_ns)
    for ri, rm in enumerate(req.resource_metrics):
        request.resource(rm, ri)
    return request.result()


def decode_metrics_protobuf(body: bytes, deltas: Deltas) -> MetricsDecodeResult:
    """Decode a protobuf ``ExportMetricsServiceRequest`` (OTLP/HTTP body or gRPC bytes).

    Raises:
        DecodeError: the body is not a valid ``ExportMetricsServiceRequest``.
    """
    try:
        req = ExportMetricsServiceRequest.FromString(body)
    except message.DecodeError as exc:
        raise DecodeError(f"body is not a valid ExportMetricsServiceRequest: {exc}") from exc
    return decode_metrics_request(req, deltas)


def decode_metrics_json(body: bytes, deltas: Deltas) -> MetricsDecodeResult:
    """Decode an OTLP/JSON ``ExportMetricsServiceRequest`` body.

    OTLP/JSON differs from protobuf's JSON mapping only in hex trace and span
    ids (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding),
    which metrics carry only in exemplars; tinct does not store exemplars,
    so they are removed before ``json_format`` parses the document.

    Raises:
        DecodeError: the body is not JSON, not an object, or not shaped like
            an ``ExportMetricsServiceRequest``.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DecodeError("body is not an ExportMetricsServiceRequest: not a JSON object")
    _drop_exemplars(doc)
    req = ExportMetricsServiceRequest()
    try:
        json_format.ParseDict(doc, req, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise DecodeError(f"body is not a valid ExportMetricsServiceRequest: {exc}") from exc
    return decode_metrics_request(req, deltas)


def _drop_exemplars(doc: dict[str, Any]) -> None:
    """Remove ``exemplars`` from every data point of a JSON document, in place.

    Parts of the wrong JSON type are left for ``json_format`` to refuse.
    """
    for rm in _items(doc, "resourceMetrics", "resource_metrics"):
        for sm in _items(rm, "scopeMetrics", "scope_metrics"):
            for metric in _items(sm, "metrics", "metrics"):
                for data in metric.values() if isinstance(metric, dict) else ():
                    for point in _items(data, "dataPoints", "data_points"):
                        if isinstance(point, dict):
                            point.pop("exemplars", None)


def _items(obj: Any, camel: str, snake: str) -> list[Any]:
    if not isinstance(obj, dict):
        return []
    value = obj.get(camel, obj.get(snake))
    return value if isinstance(value, list) else []
