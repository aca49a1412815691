"""Delta OTLP sums and histograms turned cumulative, as Prometheus needs them.

A Prometheus counter or histogram is cumulative: each sample is the total
since the series started. OTLP senders may report *delta* temporality
instead (each point the change since the previous one; OpenTelemetry SDKs
do with ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta``), and the
specification's "Prometheus and OpenMetrics Compatibility" says such sums
and histograms SHOULD be aggregated into cumulative ones. The algorithm is
the metrics data model's "Sums: Delta-to-Cumulative" (with its "detecting
alignment issues"), as the Collector's prometheus exporter applies it to
sums and histograms alike:

* the first point of a series starts its running total;
* a point whose start time is the previous point's time is *aligned* and
  added (a point without a start time is added too: "Sums: Missing
  Timestamps" leaves nothing to check);
* a point starting *after* the previous point's time means a gap (the
  sender restarted, or a point was lost): the total restarts from it, which
  Prometheus's ``rate()`` reads as a counter reset;
* a point that is not newer than the last one, or starts before it (a
  retried duplicate, or two senders writing one series: the data model's
  single-writer violation), can't be added and is refused with a reason.

The totals live in memory only, so after tinct restarts every delta series
starts again from its next point: to queries that looks like a counter
reset, which ``rate()`` and ``increase()`` handle. Memory is bounded by
``max_series``; past it the series updated least recently is forgotten
(counted in :attr:`DeltaAccumulator.evicted`), which again looks like a
reset if that series comes back.

Updates happen in a :class:`DeltaTransaction`: a receiver decodes a request,
hands its samples to the writer and commits only if the writer took them.
A request refused with 503 leaves the totals untouched, so the client's
retry is added once, not twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from types import TracebackType

__all__ = ["DeltaAccumulator", "DeltaTransaction", "Running"]


@dataclass(frozen=True)
class Running:
    """A series' running total: a sum's value or a histogram's count, sum and buckets.

    ``bounds`` and ``buckets`` are a histogram's explicit bounds and per-bucket
    counts (not cumulative across buckets); both empty for a sum. ``total``
    is a histogram's sum, ``None`` when a point since the reset had none.
    """

    start_ns: int
    time_ns: int
    value: float
    total: float | None = None
    bounds: tuple[float, ...] = ()
    buckets: tuple[int, ...] = ()


def _problem(prev: Running, start_ns: int, time_ns: int) -> str:
    if time_ns <= prev.time_ns:
        return (
            f"delta point at time_unix_nano {time_ns} is not after the last one "
            f"accumulated ({prev.time_ns}): a duplicate or out of order"
        )
    return (
        f"delta point starting at {start_ns} overlaps the previous one (ending "
        f"{prev.time_ns}): two senders for one series?"
    )


class DeltaAccumulator:
    """Running totals of delta series, keyed by whatever identifies a series.

    Thread-safe: all access goes through :meth:`transaction`, which holds
    the accumulator's lock from its first update until it ends.

    Args:
        max_series: series kept; the least recently updated go first.
    """

    def __init__(self, max_series: int = 100_000) -> None:
        if max_series < 1:
            raise ValueError(f"max_series must be at least 1, got {max_series}")
        self.max_series = max_series
        #: Series forgotten to stay within ``max_series``, since start.
        self.evicted = 0
        self._lock = threading.Lock()
        self._series: OrderedDict[Hashable, Running] = OrderedDict()

    def __len__(self) -> int:
        return len(self._series)

    def transaction(self) -> DeltaTransaction:
        """A transaction; use it as a context manager and :meth:`~DeltaTransaction.commit`."""
        return DeltaTransaction(self)

    def _commit(self, pending: dict[Hashable, Running | None]) -> None:
        series = self._series
        for key, running in pending.items():
            if running is None:
                series.pop(key, None)
            else:
                series[key] = running
                series.move_to_end(key)
        while len(series) > self.max_series:
            series.popitem(last=False)
            self.evicted += 1


class DeltaTransaction:
    """Updates to a :class:`DeltaAccumulator` that take effect on :meth:`commit`.

    Not thread-safe itself (one per request). The accumulator's lock is
    taken at the first update and released by :meth:`commit` or when the
    ``with`` block ends; leaving the block without committing discards the
    updates.
    """

    def __init__(self, owner: DeltaAccumulator) -> None:
        self._owner = owner
        self._pending: dict[Hashable, Running | None] = {}
        self._locked = False

    def __enter__(self) -> DeltaTransaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pending.clear()
        self._release()

    def _current(self, key: Hashable) -> Running | None:
        if not self._locked:
            self._owner._lock.acquire()
            self._locked = True
        if key in self._pending:
            return self._pending[key]
        return self._owner._series.get(key)

    def _release(self) -> None:
        if self._locked:
            self._locked = False
            self._owner._lock.release()

    def add_sum(self, key: Hashable, start_ns: int, time_ns: int, value: float) -> Running | str:
        """Add a delta sum point; returns the running total, or why the point can't be added."""
        prev = self._current(key)
        if prev is None or (start_ns and start_ns > prev.time_ns):
            running = Running(start_ns, time_ns, value)
        elif time_ns > prev.time_ns and (not start_ns or start_ns == prev.time_ns):
            running = Running(prev.start_ns, time_ns, prev.value + value)
        else:
            return _problem(prev, start_ns, time_ns)
        self._pending[key] = running
        return running

    def add_histogram(
        self,
        key: Hashable,
        start_ns: int,
        time_ns: int,
        count: int,
        total: float | None,
        bounds: tuple[float, ...],
        buckets: tuple[int, ...],
    ) -> Running | str:
        """Add a delta histogram point; returns the running histogram, or why
        the point can't be added. Other bucket bounds than the running
        histogram's restart it (its buckets can't be added up)."""
        prev = self._current(key)
        fresh = Running(start_ns, time_ns, float(count), total, bounds, buckets)
        if prev is None or (start_ns and start_ns > prev.time_ns):
            running = fresh
        elif time_ns > prev.time_ns and (not start_ns or start_ns == prev.time_ns):
            if prev.bounds != bounds or len(prev.buckets) != len(buckets):
                running = fresh
            else:
                both = None if prev.total is None or total is None else prev.total + total
                added = tuple(a + b for a, b in zip(prev.buckets, buckets, strict=True))
                running = Running(prev.start_ns, time_ns, prev.value + count, both, bounds, added)
        else:
            return _problem(prev, start_ns, time_ns)
        self._pending[key] = running
        return running

    def forget(self, key: Hashable) -> None:
        """Drop a series' total (its sender marked it as having no value)."""
        self._current(key)
        self._pending[key] = None

    def commit(self) -> None:
        """Make the updates count and release the accumulator."""
        if self._pending:
            self._owner._commit(self._pending)
            self._pending = {}
        self._release()
