"""The dynamic topology, computed incrementally as spans are stored.

:class:`TopologyAggregator` sits behind the span writer like the span-derived
layers do: it sees every stored batch once, keeps the few columns the call
rule needs (:class:`~tinct.topology.calls.SpanInfo`) grouped by trace, and
waits. A trace is resolved into calls (:func:`~tinct.topology.calls.trace_calls`)
once no span of it has arrived for ``wait_s`` seconds, so a caller and a
callee exported seconds apart, in different requests, still pair up and the
call counts once (Tempo's service graph has the same ``wait``). Calls are
summed per minute and node pair, with a mergeable latency histogram, and
written as pre-aggregated edges every ``flush_s``; a topology query reads
those, never raw spans.

The spans still waiting are saved with every flush as a checkpoint in the
store, and loaded by :meth:`TopologyAggregator.open`, so a restart resumes
pairing them. A crash loses at most what arrived since the last flush, and a
trace resolved in that moment may count again; a graceful stop loses nothing
(:meth:`TopologyAggregator.close`).

Threading: :meth:`observe` runs on the span writer's thread, :meth:`tick` on a
background one; one lock guards the pending traces, store writes happen
outside it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tinct.spans import SpanKind
from tinct.storage.topology import EDGE_SCHEMA, PENDING_SCHEMA, TopologyStore
from tinct.topology.calls import SpanInfo, span_info, trace_calls, trace_dye, trace_weight
from tinct.topology.latency import bucket_of

__all__ = [
    "TopologyAggregator",
    "run_topology",
    "DEFAULT_WAIT_SECONDS",
    "DEFAULT_FLUSH_SECONDS",
]

logger = logging.getLogger(__name__)

DEFAULT_WAIT_SECONDS = 10.0
# A minute: each (minute, edge) is then written about once, so a topology
# query sums few rows (a 5 s flush gave 12 rows per edge-minute, and an hour
# over 10M spans took 125 ms instead of 25), and the waiting spans are
# checkpointed 12 times less often. Edges show up within wait + flush.
DEFAULT_FLUSH_SECONDS = 60.0
# Beyond this many waiting spans the oldest traces are resolved early.
DEFAULT_MAX_PENDING_SPANS = 1_000_000
_MINUTE_NS = 60 * 10**9
_PEERED_KINDS = (int(SpanKind.CLIENT), int(SpanKind.PRODUCER), int(SpanKind.CONSUMER))
_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service",
    "name",
    "kind",
    "start_ns",
    "duration_ns",
    "status_code",
    "http_route",
    "sampling_probability",
    "dye",
)


@dataclass
class _Trace:
    last_arrival: float
    spans: dict[bytes, SpanInfo] = field(default_factory=dict)


@dataclass
class _Sums:
    calls: int = 0
    errors: int = 0
    weighted_calls: float = 0.0
    weighted_errors: float = 0.0
    latency: Counter[int] = field(default_factory=Counter)


_EdgeKey = tuple[int, str, str, str, str, str, str, str]


class TopologyAggregator:
    """Spans in, per-minute edges out (module docstring).

    Args:
        store: where edges are written and pending spans saved.
        wait_s: how long a trace may stay quiet before it is resolved.
        flush_s: how often edges are written and pending spans saved.
        max_pending_spans: resolve the oldest traces early past this many.
        clock: Unix seconds; tests pass a fake one.
    """

    def __init__(
        self,
        store: TopologyStore,
        *,
        wait_s: float = DEFAULT_WAIT_SECONDS,
        flush_s: float = DEFAULT_FLUSH_SECONDS,
        max_pending_spans: int = DEFAULT_MAX_PENDING_SPANS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._wait_s = wait_s
        self._flush_s = flush_s
        self._max_pending = max_pending_spans
        self._clock = clock
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        # Ordered by last arrival: the traces due are always a prefix.
        self._pending: OrderedDict[bytes, _Trace] = OrderedDict()
        self._pending_spans = 0
        self._sums: dict[_EdgeKey, _Sums] = {}
        self._checkpoint = 0
        self._last_flush = clock()
        self._dirty = False
        self.calls_counted = 0
        self.traces_resolved = 0
        self.traces_forced = 0

    # -- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        """Load the spans a previous run left waiting. Raises StorageError."""
        table, self._checkpoint = self._store.load_topology_pending()
        now = self._clock()
        with self._lock:
            for row in table.to_pylist():
                info = SpanInfo(
                    row["span_id"],
                    row["parent_span_id"],
                    row["service"],
                    row["interface"],
                    row["kind"],
                    row["start_ns"],
                    row["duration_ns"],
                    bool(row["error"]),
                    row["peer"],
                    row["peer_kind"],
                    row["probability"],
                    row["dye"],
                )
                # A fresh wait: while tinct was down nothing could arrive, and
                # the rest of these traces comes now (exporters retry).
                self._add(row["trace_id"], info, now)
        if table.num_rows:
            logger.info("topology: resumed %d waiting spans", table.num_rows)

    def close(self) -> None:
        """Write what was counted and save the waiting spans. Raises StorageError."""
        self.flush(force=True)

    # -- the write path --------------------------------------------------------------

    def observe(self, batch: pa.Table) -> None:
        """Take a stored SPAN_SCHEMA batch into account. Never blocks on I/O."""
        if batch.num_rows == 0:
            return
        cols = {name: batch.column(name).to_pylist() for name in _COLUMNS}
        attrs = _peer_attributes(batch)
        now = self._clock()
        infos = [
            (
                cols["trace_id"][i],
                span_info(
                    span_id=cols["span_id"][i],
                    parent_span_id=cols["parent_span_id"][i],
                    service=cols["service"][i],
                    name=cols["name"][i],
                    kind=cols["kind"][i],
                    start_ns=cols["start_ns"][i],
                    duration_ns=cols["duration_ns"][i],
                    status_code=cols["status_code"][i],
                    http_route=cols["http_route"][i],
                    attrs=attrs.get(i, _NO_ATTRS),
                    probability=cols["sampling_probability"][i],
                    dye=cols["dye"][i],
                ),
            )
            for i in range(batch.num_rows)
        ]
        forced: list[_Trace] = []
        with self._lock:
            for trace_id, info in infos:
                self._add(trace_id, info, now)
            while self._pending_spans > self._max_pending and self._pending:
                forced.append(self._pop_oldest())
        if forced:
            self.traces_forced += len(forced)
            logger.warning("topology: %d traces resolved early (too many waiting)", len(forced))
            self._resolve(forced)

    def _add(self, trace_id: bytes, info: SpanInfo, arrived: float) -> None:
        trace = self._pending.get(trace_id)
        if trace is None:
            trace = self._pending[trace_id] = _Trace(arrived)
        else:
            trace.last_arrival = max(trace.last_arrival, arrived)
            self._pending.move_to_end(trace_id)
        if info.span_id not in trace.spans:
            self._pending_spans += 1
        trace.spans[info.span_id] = info
        self._dirty = True

    def _pop_oldest(self) -> _Trace:
        _, trace = self._pending.popitem(last=False)
        self._pending_spans -= len(trace.spans)
        return trace

    # -- resolving and flushing ------------------------------------------------------

    def tick(self) -> None:
        """Resolve the traces quiet for ``wait_s``; flush every ``flush_s``.

        Blocks on the store when flushing. Raises StorageError (the calls
        stay counted and are written by the next flush).
        """
        now = self._clock()
        due: list[_Trace] = []
        with self._lock:
            while self._pending:
                oldest = next(iter(self._pending.values()))
                if now - oldest.last_arrival < self._wait_s:
                    break
                due.append(self._pop_oldest())
        self._resolve(due)
        if now - self._last_flush >= self._flush_s:
            self.flush()

    def _resolve(self, traces: list[_Trace]) -> None:
        for trace in traces:
            spans = list(trace.spans.values())
            weight = trace_weight(spans)
            dye = trace_dye(spans)
            calls = trace_calls(spans)
            with self._flush_lock:
                for c in calls:
                    key = (
                        c.start_ns // _MINUTE_NS * 60_000,
                        c.source_service,
                        c.source_interface,
                        c.source_kind,
                        c.target_service,
                        c.target_interface,
                        c.target_kind,
                        dye,
                    )
                    sums = self._sums.get(key)
                    if sums is None:
                        sums = self._sums[key] = _Sums()
                    sums.calls += 1
                    sums.weighted_calls += weight
                    if c.error:
                        sums.errors += 1
                        sums.weighted_errors += weight
                    sums.latency[bucket_of(c.duration_ns)] += 1
                self.calls_counted += len(calls)
                self._dirty = True
        self.traces_resolved += len(traces)

    def flush(self, *, force: bool = False) -> None:
        """Write the counted edges, then save the waiting spans as a checkpoint.

        Does nothing when nothing changed since the last flush, unless
        ``force``. Raises StorageError; edges not written stay counted.
        """
        with self._flush_lock:
            self._last_flush = self._clock()
            if not (self._dirty or force):
                return
            self._dirty = False
            sums, self._sums = self._sums, {}
            try:
                if sums:
                    self._store.write_topology_edges(_edge_table(sums))
            except Exception:
                for key, s in sums.items():  # keep them for the next flush
                    mine = self._sums.setdefault(key, _Sums())
                    _merge(mine, s)
                self._dirty = True
                raise
            with self._lock:
                waiting = _pending_table(self._pending)
            self._checkpoint += 1
            self._store.save_topology_pending(waiting, self._checkpoint)

    @property
    def pending_spans(self) -> int:
        """Spans waiting for their trace to go quiet."""
        return self._pending_spans


async def run_topology(aggregator: TopologyAggregator, every_s: float = 1.0) -> None:
    """Tick ``aggregator`` every ``every_s`` until cancelled. A failing tick
    is logged and retried at the next one (the calls stay counted)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(aggregator.tick)
        except Exception:
            logger.exception("topology: writing edges failed")


_NO_ATTRS: dict[str, str] = {}


def _peer_attributes(batch: pa.Table) -> dict[int, dict[str, str]]:
    """Span attributes (as text) of the rows whose peer matters, by row."""
    mask = pc.is_in(batch.column("kind"), pa.array(_PEERED_KINDS, pa.uint8()))
    rows = pc.indices_nonzero(mask).to_pylist()
    if not rows:
        return {}
    picked = batch.select(["attr_keys", "attr_values"]).take(rows)
    keys = picked.column("attr_keys").to_pylist()
    values = picked.column("attr_values").to_pylist()
    pairs = zip(rows, keys, values, strict=True)
    return {row: dict(zip(k, v, strict=False)) for row, k, v in pairs}


def _merge(into: _Sums, other: _Sums) -> None:
    into.calls += other.calls
    into.errors += other.errors
    into.weighted_calls += other.weighted_calls
    into.weighted_errors += other.weighted_errors
    into.latency.update(other.latency)


def _edge_table(sums: dict[_EdgeKey, _Sums]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in EDGE_SCHEMA.names}
    for key, s in sums.items():
        for name, value in zip(EDGE_SCHEMA.names[:8], key, strict=True):
            columns[name].append(value)
        columns["calls"].append(s.calls)
        columns["errors"].append(s.errors)
        columns["weighted_calls"].append(s.weighted_calls)
        columns["weighted_errors"].append(s.weighted_errors)
        buckets = sorted(s.latency)
        columns["latency_buckets"].append(buckets)
        columns["latency_counts"].append([s.latency[b] for b in buckets])
    return pa.Table.from_pydict(columns, schema=EDGE_SCHEMA)


def _pending_table(pending: OrderedDict[bytes, _Trace]) -> pa.Table:
    rows = [
        {
            "trace_id": trace_id,
            "span_id": info.span_id,
            "parent_span_id": info.parent_span_id,
            "service": info.service,
            "interface": info.interface,
            "kind": info.kind,
            "start_ns": info.start_ns,
            "duration_ns": info.duration_ns,
            "error": int(info.error),
            "peer": info.peer,
            "peer_kind": info.peer_kind,
            "probability": info.probability,
            "dye": info.dye,
            "arrived_ms": int(trace.last_arrival * 1000),
        }
        for trace_id, trace in pending.items()
        for info in trace.spans.values()
    ]
    return pa.Table.from_pylist(rows, schema=PENDING_SCHEMA)
