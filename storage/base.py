"""The store interface the rest of tinct depends on.

Receivers hand batches of spans (a ``pyarrow.Table`` with
:data:`tinct.spans.SPAN_SCHEMA`) to a :class:`SpanWriter`; the query APIs read
through :class:`SpanReader`. The dye rules that entry services poll live in
the same store behind :class:`DyeRuleStore`. Both backends (embedded chdb,
ClickHouse server) implement :class:`SpanStore`, which is the three together
plus lifecycle, and :class:`LogStore` for log records
(:data:`tinct.logs.LOG_SCHEMA` batches), and :class:`MetricStore` for metric
series and samples (:data:`tinct.metrics.SAMPLE_SCHEMA` batches).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from tinct.logs import LogQuery, LogRow
from tinct.metrics import Matcher, MetricMetadata, Series
from tinct.spans import TraceQuery

__all__ = [
    "SpanWriter",
    "SpanReader",
    "SpanStore",
    "SpanRow",
    "DyeRuleStore",
    "StoredDyeRule",
    "LogWriter",
    "LogReader",
    "LogStore",
    "LogRow",
    "MetricWriter",
    "MetricReader",
    "MetricStore",
]

# A stored span: keys are tinct.spans.SPAN_COLUMNS, values plain Python
# (bytes for ids, lists for arrays, int/float/str for scalars).
SpanRow = dict[str, Any]


@runtime_checkable
class SpanWriter(Protocol):
    def write_spans(self, batch: pa.Table) -> None:
        """Insert ``batch`` synchronously. Blocks; raises StorageError on failure.

        Safe to call from one writer thread while readers run in others.
        """


@runtime_checkable
class SpanReader(Protocol):
    def get_trace(self, trace_id: bytes) -> list[SpanRow]:
        """Every stored span of the trace, ordered by start time; [] if unknown."""

    def find_traces(self, query: TraceQuery) -> list[list[SpanRow]]:
        """Whole traces having a span that matches ``query``, newest first."""

    def services(self) -> list[str]:
        """Service names seen, sorted."""

    def operations(self, service: str, span_kind: int | None = None) -> list[tuple[str, int]]:
        """(span name, OTLP span kind) pairs seen for ``service``, sorted."""

    def dependencies(self, start_ns: int, end_ns: int) -> list[tuple[str, str, int]]:
        """(parent service, child service, calls) between services, sorted.

        A call is a span starting in ``[start_ns, end_ns]`` whose parent span
        belongs to another service (Jaeger's dependency rule).
        """


@dataclass(frozen=True)
class StoredDyeRule:
    """One dye rule as stored: dye requests matching ``kind``/``key``/``value``.

    Attributes:
        id: opaque id, unique per rule (the API makes 16 hex digits).
        kind: ``user``, ``header``, ``route`` or ``tenant``.
        key: the header name for ``header`` rules; "" or free text otherwise.
        value: the value to match.
        service: the entry service the rule is for; "" for every service.
        ratio: share of matching requests to dye, in (0, 1].
        created_at: Unix seconds.
        expires_at: Unix seconds; the rule stops matching then.
    """

    id: str
    kind: str
    key: str
    value: str
    service: str
    ratio: float
    created_at: float
    expires_at: float


@runtime_checkable
class DyeRuleStore(Protocol):
    """Where dye rules are kept; written by the API, polled by entry services."""

    def add_dye_rule(self, rule: StoredDyeRule) -> None:
        """Store a new rule. Blocks; raises StorageError."""

    def dye_rules(self, now_s: float, service: str | None = None) -> list[StoredDyeRule]:
        """Live rules (not ended, ``expires_at > now_s``), oldest first.

        ``service`` given: only that service's rules and the service-less ones.
        """

    def end_dye_rule(self, rule_id: str, now_s: float) -> bool:
        """End a live rule now; False when it is unknown, ended or expired."""


@runtime_checkable
class LogWriter(Protocol):
    def write_logs(self, batch: pa.Table) -> None:
        """Insert a LOG_SCHEMA ``batch`` synchronously. Blocks; raises StorageError
        (InvalidBatchError when it does not fit the schema)."""


@runtime_checkable
class LogReader(Protocol):
    def find_logs(self, query: LogQuery) -> list[LogRow]:
        """The records ``query`` selects, oldest first, at most ``query.limit``."""


@runtime_checkable
class LogStore(LogWriter, LogReader, Protocol):
    """Where log records are kept; both SQL backends and the in-memory store."""


@runtime_checkable
class MetricWriter(Protocol):
    def write_samples(self, batch: pa.Table) -> None:
        """Insert a SAMPLE_SCHEMA ``batch`` synchronously, recording series new
        to the store. Series past the per-metric series limit are dropped and
        counted (``dropped_series``). Blocks; raises StorageError
        (InvalidBatchError when it does not fit the schema)."""

    def write_metadata(self, rows: Sequence[MetricMetadata]) -> None:
        """Record HELP/TYPE/UNIT of metric families (the latest wins)."""


@runtime_checkable
class MetricReader(Protocol):
    def series(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, limit: int = 0
    ) -> list[Series]:
        """Series matching every matcher with samples in ``[start_ms, end_ms]``
        (by day: a series seen that day may have no sample in the window),
        sorted by labels; at most ``limit`` when it is > 0."""

    def samples(
        self,
        fingerprints: Sequence[int],
        start_ms: int,
        end_ms: int,
        windows: tuple[int, int, int] | None = None,
    ) -> pa.Table:
        """Samples of those series in ``[start_ms, end_ms]`` (both ends
        included), one per timestamp, as a table of ``fingerprint``,
        ``timestamp_ms``, ``value`` sorted by fingerprint then time.
        Staleness markers come back bit for bit. ``windows`` =
        ``(first_end, step, length)`` keeps only samples in some window
        ``(first_end + k*step - length, first_end + k*step]`` (a PromQL range
        query's steps), filtered by the store."""

    def label_names(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[str]:
        """Label names (``__name__`` included) of matching series, sorted."""

    def label_values(
        self, name: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[str]:
        """Non-empty values of label ``name`` over matching series, sorted."""

    def metadata(self, metric: str | None = None) -> list[MetricMetadata]:
        """Recorded metadata, sorted by metric; only ``metric``'s when given."""


@runtime_checkable
class MetricStore(MetricWriter, MetricReader, Protocol):
    """Where metric series and samples are kept; both SQL backends and the
    in-memory store."""


@runtime_checkable
class SpanStore(SpanWriter, SpanReader, DyeRuleStore, Protocol):
    def close(self) -> None:
        """Release connections and files. Idempotent."""
