"""An in-memory :class:`~tinct.storage.base.MetricStore` for tests.

Same answers as the SQL stores for the same writes (the shared store tests
hold all three to that), without a database: collectors, the scheduler and
the APIs are tested against it, the SQL backends against the real servers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pyarrow as pa

from tinct.metrics import NAME_LABEL, Matcher, MetricMetadata, Series
from tinct.storage.metric_batches import (
    DAY_MS,
    SAMPLE_READ_SCHEMA,
    SeriesLimit,
    normalize_samples,
)

__all__ = ["InMemoryMetricStore"]


class InMemoryMetricStore:
    """Series and samples in dicts. Thread-safe.

    Args:
        max_series_per_metric: the per-metric, per-day series limit (0: none).
    """

    def __init__(self, max_series_per_metric: int = 0) -> None:
        self._lock = threading.Lock()
        self._labels: dict[int, dict[str, str]] = {}
        self._days: dict[int, set[int]] = {}
        self._samples: dict[int, dict[int, float]] = {}
        self._metadata: dict[str, MetricMetadata] = {}
        self._limit = SeriesLimit(max_series_per_metric)

    @property
    def dropped_series(self) -> dict[str, int]:
        """Series refused by the series limit, per metric name, since start."""
        return self._limit.dropped

    def write_samples(self, batch: pa.Table) -> None:
        table = normalize_samples(batch)
        with self._lock:
            keep, _ = self._limit.admit(table)
            rows = table.filter(pa.array(keep)).to_pylist() if not all(keep) else table.to_pylist()
            for row in rows:
                fp = row["fingerprint"]
                if fp not in self._labels:
                    labels = dict(zip(row["label_keys"], row["label_values"], strict=True))
                    labels[NAME_LABEL] = row["metric_name"]
                    self._labels[fp] = labels
                self._days.setdefault(fp, set()).add(row["timestamp_ms"] // DAY_MS)
                self._samples.setdefault(fp, {})[row["timestamp_ms"]] = row["value"]

    def write_metadata(self, rows: Sequence[MetricMetadata]) -> None:
        with self._lock:
            for row in rows:
                self._metadata[row.metric] = row

    def _matching(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        first, last = start_ms // DAY_MS, end_ms // DAY_MS
        found = []
        with self._lock:
            for fp, labels in self._labels.items():
                if not any(first <= d <= last for d in self._days[fp]):
                    continue
                if all(m.matches(labels.get(m.name, "")) for m in matchers):
                    found.append(Series(fp, dict(labels)))
        found.sort(key=lambda s: sorted(s.labels.items()))
        return found

    def series(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, limit: int = 0
    ) -> list[Series]:
        found = self._matching(matchers, start_ms, end_ms)
        return found[:limit] if limit > 0 else found

    def samples(
        self,
        fingerprints: Sequence[int],
        start_ms: int,
        end_ms: int,
        windows: tuple[int, int, int] | None = None,
    ) -> pa.Table:
        first_end, step, length = windows if windows is not None else (0, 0, 0)
        filtered = 0 < length < step
        fps: list[int] = []
        times: list[int] = []
        values: list[float] = []
        with self._lock:
            for fp in sorted(set(fingerprints)):
                points = self._samples.get(fp, {})
                for ts in sorted(points):
                    if filtered and (first_end - ts) % step >= length:
                        continue
                    if start_ms <= ts <= end_ms:
                        fps.append(fp)
                        times.append(ts)
                        values.append(points[ts])
        return pa.table(
            [pa.array(fps, pa.uint64()), pa.array(times, pa.int64()), pa.array(values)],
            schema=SAMPLE_READ_SCHEMA,
        )

    def label_names(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[str]:
        names = {k for s in self._matching(matchers, start_ms, end_ms) for k in s.labels}
        return sorted(names)

    def label_values(
        self, name: str, matchers: Sequence[Matcher], start_ms: int, end_ms: int
    ) -> list[str]:
        found = self._matching(matchers, start_ms, end_ms)
        return sorted({s.labels[name] for s in found if s.labels.get(name)})

    def metadata(self, metric: str | None = None) -> list[MetricMetadata]:
        with self._lock:
            rows = [m for m in self._metadata.values() if metric is None or m.metric == metric]
        return sorted(rows, key=lambda m: m.metric)
