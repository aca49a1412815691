"""The service, interface and user layers, derived from RED meters and spans.

Two sources, one set of series (the catalog's SERVICE/INTERFACE/USER
sections):

* **RED meters** (exact): the instrumentation library records every request
  in OpenTelemetry's ``http.server.request.duration`` histogram, which the
  OTLP metrics receiver stores as sent
  (``http_server_request_duration_seconds_bucket/_sum/_count`` with
  ``job``, ``instance``, ``http_route``, ``http_request_method``,
  ``http_response_status_code``). :class:`MeterLayers` re-aggregates them
  into ``service_request_duration_seconds`` (per service and status class)
  and ``interface_request_duration_seconds`` (per service, interface = the
  route, method and status class), summing the latest cumulative value of
  every source series, so a request that carries only some series still
  gives the right totals.
* **Spans** (estimated): for apps that send only traces,
  :class:`SpanLayers` counts server spans, each weighted by
  ``1 / tinct.sampling.probability``, into the same series with
  ``estimated="true"``; services whose RED meters arrive are left to the
  meters. Server spans carrying ``enduser.id`` also give the user layer's
  ``user_request_duration_seconds`` per user and service, with at most
  ``max_users`` distinct users per window and the rest under
  ``user="other"`` (per-user series are a cardinality risk; the RED meters
  deliberately carry no ``enduser.id``).

State is in memory: after a restart the derived counters start again from
zero, which PromQL's ``rate()`` reads as a counter reset.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinct.collectors.exposition import format_openmetrics_float
from tinct.metrics import NAME_LABEL, Labels, SampleBuilder, is_stale
from tinct.standard import LAYER_LABEL, Layer

__all__ = [
    "MeterLayers",
    "SpanLayers",
    "MeteredSink",
    "ObservingSpanWriter",
    "SpanObserver",
    "status_class",
    "SERVICE_DURATION",
    "INTERFACE_DURATION",
    "USER_DURATION",
    "RED_SOURCE",
]

logger = logging.getLogger(__name__)

RED_SOURCE = "http_server_request_duration_seconds"
SERVICE_DURATION = "service_request_duration_seconds"
INTERFACE_DURATION = "interface_request_duration_seconds"
USER_DURATION = "user_request_duration_seconds"
# OpenTelemetry's advised HTTP duration buckets, as the RED meters use.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
OTHER = "other"
_BOUNDS = np.asarray(BUCKETS, dtype=np.float64)
# status_class of the grouped class index: code // 100, 9 for failed, 0 unknown.
_KLASS = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx", 9: "error", 0: "unknown"}
_SERVER_KIND = 2  # OTLP SpanKind SERVER
_MAX_SOURCES = 200_000


def status_class(code: str | int | None, error: str | None = None) -> str:
    """``2xx``..``5xx`` from an HTTP status; ``error`` without one when the
    request failed, ``unknown`` otherwise."""
    text = str(code or "")
    if len(text) == 3 and text.isdigit() and text[0] in "12345":
        return f"{text[0]}xx"
    return "error" if error else "unknown"


def _service_of(job: str) -> str:
    # job is "service.namespace/service.name" or "service.name" (OTLP → Prometheus).
    return job.rpartition("/")[2]


def _labels(name: str, pairs: dict[str, str]) -> Labels:
    return tuple(sorted([(NAME_LABEL, name), *((k, v) for k, v in pairs.items() if v)]))


class MeterLayers:
    """Derives service and interface series from stored RED histograms.

    Call :meth:`derive` with every sample batch the OTLP metrics receiver
    produces; it returns the derived samples to store beside them.

    Threading: thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # derived series -> source fingerprint -> (timestamp, cumulative value)
        self._sources: dict[Labels, dict[int, tuple[int, float]]] = {}
        self._builder = SampleBuilder(max_cached=_MAX_SOURCES)
        self.services: dict[str, float] = {}  # service -> last seen (Unix seconds)

    def derive(self, batch: pa.Table, now: float | None = None) -> pa.Table:
        """The service/interface samples that ``batch``'s RED rows update."""
        names = batch.column("metric_name")
        mask = pc.starts_with(names, RED_SOURCE + "_")
        if batch.num_rows == 0 or not pc.any(mask).as_py():
            return self._builder.take()
        rows = batch.filter(mask).to_pylist()
        seen_at = time.time() if now is None else now
        with self._lock:
            touched: set[Labels] = set()
            for row in rows:
                suffix = row["metric_name"][len(RED_SOURCE) :]
                if suffix not in ("_bucket", "_sum", "_count"):
                    continue
                labels = dict(zip(row["label_keys"], row["label_values"], strict=True))
                service = _service_of(labels.get("job", ""))
                if not service:
                    continue
                self.services[service] = seen_at
                common = {
                    "service": service,
                    "instance": labels.get("instance", ""),
                    "status_class": status_class(
                        labels.get("http_response_status_code"), labels.get("error_type")
                    ),
                    "le": _normal_le(labels.get("le", "")),
                }
                for key in (
                    _labels(SERVICE_DURATION + suffix, {**common, LAYER_LABEL: "service"}),
                    _labels(
                        INTERFACE_DURATION + suffix,
                        {
                            **common,
                            LAYER_LABEL: "interface",
                            "interface": labels.get("http_route") or OTHER,
                            "method": labels.get("http_request_method", ""),
                        },
                    ),
                ):
                    sources = self._sources.setdefault(key, {})
                    if is_stale(row["value"]):
                        sources.pop(row["fingerprint"], None)  # that series ended
                    elif len(sources) < _MAX_SOURCES:
                        sources[row["fingerprint"]] = (row["timestamp_ms"], row["value"])
                    touched.add(key)
            for key in touched:
                sources = self._sources[key]
                if sources:
                    ts = max(t for t, _ in sources.values())
                    self._builder.add(key, ts, sum(v for _, v in sources.values()))
            return self._builder.take()

    def metered(self, within_seconds: float, now: float | None = None) -> set[str]:
        """Services whose RED meters arrived within the last ``within_seconds``."""
        at = time.time() if now is None else now
        with self._lock:
            return {s for s, seen in self.services.items() if at - seen <= within_seconds}


@dataclass
class _Histogram:
    """One cumulative histogram series: count, sum and per-bucket counts."""

    count: float = 0.0
    sum: float = 0.0
    buckets: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS))

    def add(self, bucket: int, weight: float, weighted_seconds: float) -> None:
        """Count ``weight`` requests in bucket ``bucket`` (len(BUCKETS): only +Inf)."""
        self.count += weight
        self.sum += weighted_seconds
        if bucket < len(BUCKETS):
            self.buckets[bucket] += weight


class SpanLayers:
    """Estimates service, interface and user series from server spans.

    Args:
        metered: services whose RED meters arrive (left out here); called
            at each :meth:`observe` and :meth:`collect`.
        max_users: distinct users with their own series per window.
        user_window_seconds: how long the set of named users lasts.
        clock: Unix seconds.

    Threading: thread-safe; :meth:`observe` is called from the span
    receivers' threads, :meth:`collect` from the emitting task.
    """

    def __init__(
        self,
        *,
        metered: Callable[[], set[str]] = set,
        max_users: int = 1000,
        user_window_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metered = metered
        self._max_users = max_users
        self._window = user_window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], _Histogram] = {}
        self._changed: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        self._users: set[str] = set()
        self._window_start = clock()
        self._builder = SampleBuilder()

    def observe(self, spans: pa.Table) -> None:
        """Count the server spans of a SPAN_SCHEMA batch.

        Columnar: the spans are grouped by series and bucket in Arrow, so the
        Python work is per group (a few hundred), not per span; this runs on
        every span batch a receiver accepts.
        """
        if spans.num_rows == 0:
            return
        server = spans.filter(pc.equal(spans.column("kind"), _SERVER_KIND))
        if server.num_rows == 0:
            return
        p = server.column("sampling_probability").to_numpy()
        weight = np.where((p > 0) & (p <= 1), 1.0 / np.where(p > 0, p, 1.0), 1.0)
        seconds = np.maximum(server.column("duration_ns").to_numpy(), 0) / 1e9
        code = server.column("http_status_code").to_numpy().astype(np.int64)
        failed = server.column("status_code").to_numpy() == 2  # OTLP STATUS_CODE_ERROR
        klass = np.where((code >= 100) & (code < 600), code // 100, np.where(failed, 9, 0))
        route, name = server.column("http_route"), server.column("name")
        interface = pc.if_else(
            pc.equal(route, ""), pc.if_else(pc.equal(name, ""), OTHER, name), route
        )
        table = pa.table(
            {
                "service": server.column("service"),
                "interface": interface,
                "method": server.column("http_method"),
                "user": server.column("enduser_id"),
                "klass": klass,
                "bucket": np.searchsorted(_BOUNDS, seconds, side="left"),
                "w": weight,
                "ws": weight * seconds,
            }
        )
        sums = [("w", "sum"), ("ws", "sum")]
        keys = ["service", "interface", "method", "klass", "bucket"]
        routes = table.group_by(keys).aggregate(sums).to_pylist()
        with_user = table.filter(pc.not_equal(table.column("user"), ""))
        metered = self._metered()
        with self._lock:
            self._roll_users()
            users: list[dict[str, Any]] = []
            if with_user.num_rows:
                # Name the users first (the cap turns the rest into "other"),
                # so the groups are per named user, not per distinct id.
                distinct = pc.unique(with_user.column("user"))
                named = pa.array([self._user(u) for u in distinct.to_pylist()], pa.string())
                position = pc.index_in(with_user.column("user"), value_set=distinct)
                with_user = with_user.set_column(
                    with_user.schema.get_field_index("user"), "user", named.take(position)
                )
                users = (
                    with_user.group_by(["service", "user", "klass", "bucket"])
                    .aggregate(sums)
                    .to_pylist()
                )
            for g in routes:
                service = g["service"]
                if not service or service in metered:
                    continue
                base = (
                    ("estimated", "true"),
                    ("service", service),
                    ("status_class", _KLASS[g["klass"]]),
                )
                hit = (g["bucket"], g["w_sum"], g["ws_sum"])
                self._add(SERVICE_DURATION, (*base, (LAYER_LABEL, "service")), *hit)
                interface_labels = (
                    *base,
                    (LAYER_LABEL, Layer.INTERFACE.value),
                    ("interface", g["interface"]),
                    ("method", g["method"]),
                )
                self._add(INTERFACE_DURATION, interface_labels, *hit)
            for g in users:
                if not g["service"]:
                    continue
                labels = (
                    ("estimated", "true"),
                    (LAYER_LABEL, Layer.USER.value),
                    ("service", g["service"]),
                    ("status_class", _KLASS[g["klass"]]),
                    ("user", g["user"]),
                )
                self._add(USER_DURATION, labels, g["bucket"], g["w_sum"], g["ws_sum"])

    def _add(
        self,
        name: str,
        labels: tuple[tuple[str, str], ...],
        bucket: int,
        weight: float,
        weighted_seconds: float,
    ) -> None:
        key = (name, labels)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Histogram()
        series.add(bucket, weight, weighted_seconds)
        self._changed.add(key)

    def _user(self, user: str) -> str:
        if user in self._users:
            return user
        if len(self._users) < self._max_users:
            self._users.add(user)
            return user
        return OTHER

    def _roll_users(self) -> None:
        now = self._clock()
        if now - self._window_start >= self._window:
            self._users.clear()
            self._window_start = now

    def collect(self, now_ms: int | None = None) -> pa.Table:
        """Samples of every series changed since the last collect (cumulative)."""
        ts = int(self._clock() * 1000) if now_ms is None else now_ms
        metered = self._metered()
        with self._lock:
            # A service whose meters arrived since its spans were counted is
            # the meters' now: its estimate is dropped, not written beside them.
            for key in [k for k in self._series if k[0] != USER_DURATION]:
                if dict(key[1]).get("service") in metered:
                    del self._series[key]
                    self._changed.discard(key)
            changed = [(key, self._series[key]) for key in sorted(self._changed)]
            self._changed.clear()
        add = self._builder.add
        for (name, pairs), hist in changed:
            labels = dict(pairs)
            running = 0.0
            for bound, count in zip(BUCKETS, hist.buckets, strict=True):
                running += count
                add(_labels(f"{name}_bucket", {**labels, "le": _le(bound)}), ts, running)
            add(_labels(f"{name}_bucket", {**labels, "le": "+Inf"}), ts, hist.count)
            add(_labels(f"{name}_sum", labels), ts, hist.sum)
            add(_labels(f"{name}_count", labels), ts, hist.count)
        return self._builder.take()


def _normal_le(text: str) -> str:
    """``le`` as Prometheus 3 normalizes it (OTLP writes "1", scrapes "1.0")."""
    if not text:
        return ""
    try:
        return format_openmetrics_float(float(text))
    except ValueError:
        return text


def _le(bound: float) -> str:
    """A bucket bound as Prometheus 3 writes ``le`` (``0.005``, ``1.0``, ``2.5``)."""
    return format_openmetrics_float(float(bound))


class MeteredSink:
    """A sample sink that also stores the layers derived from RED histograms.

    ``submit`` hands the batch on first (a full queue raises to the receiver,
    which answers 503), then the derived samples; if those are refused they
    are recomputed, cumulative, with the next export.
    """

    def __init__(self, sink: Any, layers: MeterLayers) -> None:
        self._sink = sink
        self._layers = layers

    def submit(self, batch: pa.Table) -> None:
        self._sink.submit(batch)
        try:
            derived = self._layers.derive(batch)
            if derived.num_rows:
                self._sink.submit(derived)
        except Exception:
            logger.exception("deriving the service and interface layers failed")


class SpanObserver(Protocol):
    """Something that learns from stored spans (span layers, the topology)."""

    def observe(self, batch: pa.Table) -> None:
        """Take a stored SPAN_SCHEMA batch into account. Must not block on I/O."""


class ObservingSpanWriter:
    """The store's ``write_spans`` that also shows each stored batch to
    observers (:class:`SpanLayers`, the topology aggregator), after each
    successful write.

    It sits behind the span BatchWriter, so it sees the writer's large
    batches: grouping is per batch of up to 50k spans, off the receivers'
    request path, and a batch retried after a failed write is counted once.
    An observer that fails is logged; the others and the write carry on.
    """

    def __init__(self, store: Any, *observers: SpanObserver) -> None:
        self._store = store
        self._observers = observers

    def write_spans(self, batch: pa.Table) -> None:
        self._store.write_spans(batch)
        for observer in self._observers:
            try:
                observer.observe(batch)
            except Exception:
                logger.exception("%s failed on stored spans", type(observer).__name__)
