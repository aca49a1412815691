"""The store interface the rest of tinct depends on.

Receivers hand batches of spans (a ``pyarrow.Table`` with
:data:`tinct.spans.SPAN_SCHEMA`) to a :class:`SpanWriter`; the query APIs read
through :class:`SpanReader`. Both backends (embedded chdb, ClickHouse server)
implement :class:`SpanStore`, which is the two together plus lifecycle.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from tinct.spans import TraceQuery

__all__ = ["SpanWriter", "SpanReader", "SpanStore", "SpanRow"]

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


@runtime_checkable
class SpanStore(SpanWriter, SpanReader, Protocol):
    def close(self) -> None:
        """Release connections and files. Idempotent."""
