"""An in-memory SpanStore for tests of the layers above storage.

It answers like the ClickHouse stores (the storage tests run the same read
tests against all three), without SQL, files or servers; receivers and query
APIs can test against it in microseconds. Not meant for production: nothing
is persisted and every search is a linear scan.
"""

from __future__ import annotations

import threading

import pyarrow as pa

from tinct.errors import StorageError
from tinct.logs import LogQuery, LogRow
from tinct.spans import TAG_SEPARATOR, TraceQuery, ValueType, tag_entry
from tinct.storage.base import SpanRow, StoredDyeRule
from tinct.storage.batches import normalize_batch
from tinct.storage.logs import normalize_log_batch
from tinct.storage.queries import PARENT_MARGIN_NS, finite_float

__all__ = ["InMemorySpanStore"]


class InMemorySpanStore:
    """A :class:`~tinct.storage.base.SpanStore` in a dict. Thread-safe (one lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._traces: dict[bytes, list[SpanRow]] = {}
        self._operations: set[tuple[str, str, int]] = set()
        # id -> (rule, ended_at); ended_at 0 while live, as in the SQL table.
        self._dye_rules: dict[str, tuple[StoredDyeRule, float]] = {}
        self._logs: list[LogRow] = []
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("in-memory store is closed")

    def write_spans(self, batch: pa.Table) -> None:
        """Store every span of a SPAN_SCHEMA batch."""
        rows = normalize_batch(batch).to_pylist()
        with self._lock:
            self._check_open()
            for row in rows:
                self._traces.setdefault(row["trace_id"], []).append(row)
                self._operations.add((row["service"], row["name"], row["kind"]))

    def get_trace(self, trace_id: bytes) -> list[SpanRow]:
        """Every span of the trace ordered by start; [] if unknown."""
        with self._lock:
            self._check_open()
            spans = list(self._traces.get(bytes(trace_id), []))
        return sorted((dict(s) for s in spans), key=lambda s: (s["start_ns"], s["span_id"]))

    def find_traces(self, query: TraceQuery) -> list[list[SpanRow]]:
        """Whole traces with a span matching every condition, newest first."""
        if query.limit <= 0:
            return []
        wanted = [tag_entry(k, v) for k, v in query.tags.items()]
        newest: dict[bytes, int] = {}
        with self._lock:
            self._check_open()
            for trace_id, spans in self._traces.items():
                for span in spans:
                    if _matches(span, query, wanted):
                        newest[trace_id] = max(newest.get(trace_id, 0), span["start_ns"])
        ranked = sorted(newest, key=lambda t: (-newest[t], t))[: query.limit]
        return [self.get_trace(t) for t in ranked]

    def services(self) -> list[str]:
        """Service names seen, sorted."""
        with self._lock:
            self._check_open()
            return sorted({service for service, _, _ in self._operations})

    def operations(self, service: str, span_kind: int | None = None) -> list[tuple[str, int]]:
        """(span name, kind) pairs seen for ``service``, sorted."""
        with self._lock:
            self._check_open()
            return sorted(
                (name, kind)
                for svc, name, kind in self._operations
                if svc == service and (span_kind is None or kind == span_kind)
            )

    def dependencies(self, start_ns: int, end_ns: int) -> list[tuple[str, str, int]]:
        """(parent service, child service, calls), as storage.queries.dependencies."""
        calls: dict[tuple[str, str], int] = {}
        with self._lock:
            self._check_open()
            for spans in self._traces.values():
                by_id = {s["span_id"]: s for s in spans}
                for child in spans:
                    parent = by_id.get(child["parent_span_id"])
                    if (
                        parent is None
                        or not start_ns <= child["start_ns"] <= end_ns
                        or not start_ns - PARENT_MARGIN_NS <= parent["start_ns"] <= end_ns
                        or parent["service"] == child["service"]
                    ):
                        continue
                    key = (parent["service"], child["service"])
                    calls[key] = calls.get(key, 0) + 1
        return [(p, c, n) for (p, c), n in sorted(calls.items())]

    def write_logs(self, batch: pa.Table) -> None:
        """Store every record of a LOG_SCHEMA batch."""
        rows = normalize_log_batch(batch).to_pylist()
        with self._lock:
            self._check_open()
            self._logs.extend(rows)

    def find_logs(self, query: LogQuery) -> list[LogRow]:
        """The records ``query`` selects, oldest first, as storage.logs.find_logs."""
        if query.limit <= 0 or len(query.trace_id) != 16:
            return []
        with self._lock:
            self._check_open()
            found = [
                dict(r)
                for r in self._logs
                if r["trace_id"] == query.trace_id
                and (not query.span_id or r["span_id"] == query.span_id)
            ]
        found.sort(key=lambda r: (r["time_ns"], r["observed_time_ns"]))
        return found[: query.limit]

    def add_dye_rule(self, rule: StoredDyeRule) -> None:
        """Store a new dye rule."""
        with self._lock:
            self._check_open()
            self._dye_rules[rule.id] = (rule, 0.0)

    def dye_rules(self, now_s: float, service: str | None = None) -> list[StoredDyeRule]:
        """Live dye rules, oldest first, as storage.dye_rules.live_rules."""
        with self._lock:
            self._check_open()
            live = [
                rule
                for rule, ended_at in self._dye_rules.values()
                if ended_at == 0
                and rule.expires_at > now_s
                and (service is None or rule.service in ("", service))
            ]
        return sorted(live, key=lambda r: (r.created_at, r.id))

    def end_dye_rule(self, rule_id: str, now_s: float) -> bool:
        """End a live dye rule; False when unknown, already ended or expired."""
        with self._lock:
            self._check_open()
            found = self._dye_rules.get(rule_id)
            if found is None or found[1] != 0 or found[0].expires_at <= now_s:
                return False
            self._dye_rules[rule_id] = (found[0], now_s if now_s > 0 else 1e-9)
            return True

    def close(self) -> None:
        """Forget everything. Idempotent."""
        with self._lock:
            self._closed = True
            self._traces.clear()
            self._operations.clear()
            self._dye_rules.clear()


def _matches(span: SpanRow, q: TraceQuery, tags: list[str]) -> bool:
    start, duration = span["start_ns"], span["duration_ns"]
    return (
        span["service"] == q.service
        and (not q.operation or span["name"] == q.operation)
        and (q.span_kind is None or span["kind"] == q.span_kind)
        and (q.start_min_ns is None or start >= q.start_min_ns)
        and (q.start_max_ns is None or start <= q.start_max_ns)
        and (q.duration_min_ns is None or duration >= q.duration_min_ns)
        and (q.duration_max_ns is None or duration <= q.duration_max_ns)
        and all(_has_tag(span, t) for t in tags)
    )


def _has_tag(span: SpanRow, entry: str) -> bool:
    """The rule of storage.queries.matching_traces: typed arrays, then ``tags``."""
    key, _, value = entry.partition(TAG_SEPARATOR)
    number = finite_float(value)
    for prefix in ("attr", "resource", "scope"):
        keys, types, values = (span[f"{prefix}_{part}"] for part in ("keys", "types", "values"))
        for k, t, v in zip(keys, types, values, strict=True):
            if k == key and (
                v == value
                or (number is not None and t == ValueType.DOUBLE and finite_float(v) == number)
            ):
                return True
    return entry in span["tags"]
