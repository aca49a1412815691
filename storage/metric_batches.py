"""Sample batches on their way into a store: checks, series bookkeeping, limit.

A :data:`~tinct.metrics.SAMPLE_SCHEMA` batch is written as two inserts: the
series rows the store has not recorded for that day yet (fingerprint,
name, labels) and the samples (fingerprint, timestamp, value). Which series
are new is known from memory (:class:`SeriesLimit`), so a scrape repeating
the same series every 15 seconds writes its series once a day. The same
bookkeeping enforces the per-metric series limit: a cardinality explosion
in one metric (a label carrying request ids) is cut off, counted, and does
not take the store down with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from tinct.metrics import SAMPLE_COLUMNS, SAMPLE_SCHEMA
from tinct.storage.base import MetricWriter
from tinct.storage.batches import InvalidBatchError
from tinct.storage.writer import BatchWriter

__all__ = [
    "DAY_MS",
    "SAMPLE_READ_SCHEMA",
    "SeriesLimit",
    "normalize_samples",
    "sample_days",
    "sample_batch_writer",
]

DAY_MS = 86_400_000

# What MetricReader.samples returns.
SAMPLE_READ_SCHEMA = pa.schema(
    [
        pa.field("fingerprint", pa.uint64(), nullable=False),
        pa.field("timestamp_ms", pa.int64(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
    ]
)


def normalize_samples(batch: pa.Table) -> pa.Table:
    """``batch`` conformed to SAMPLE_SCHEMA (columns by name, in order).

    Raises:
        InvalidBatchError: a column is missing, has another type, or has nulls,
            or label keys and values differ in length.
    """
    missing = [c for c in SAMPLE_COLUMNS if c not in batch.column_names]
    if missing:
        raise InvalidBatchError(f"sample batch lacks columns {missing}")
    columns = []
    for field in SAMPLE_SCHEMA:
        column = batch.column(field.name)
        if column.null_count:
            raise InvalidBatchError(f"sample batch column {field.name} has nulls")
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidBatchError(
                    f"sample batch column {field.name} is {column.type}, not {field.type}"
                ) from exc
        columns.append(column)
    table = pa.Table.from_arrays(columns, schema=SAMPLE_SCHEMA)
    keys = pa.compute.list_value_length(table.column("label_keys"))
    values = pa.compute.list_value_length(table.column("label_values"))
    if not pa.compute.all(pa.compute.equal(keys, values)).as_py() and table.num_rows:
        raise InvalidBatchError("sample batch: label_keys and label_values differ in length")
    return table


def sample_days(table: pa.Table) -> np.ndarray:
    """UTC day number of each sample (floor division, so pre-1970 works)."""
    days: np.ndarray = np.floor_divide(table.column("timestamp_ms").to_numpy(), DAY_MS)
    return days


class SeriesLimit:
    """Which (day, series) pairs are recorded, and the per-metric series limit.

    Args:
        max_series_per_metric: most distinct series of one metric name per
            UTC day; 0 means no limit.

    Attributes:
        dropped: samples' series refused, per metric name (each series
            counted once per day).

    Threading: :meth:`admit` takes a lock; call it once per batch.
    """

    def __init__(self, max_series_per_metric: int = 0) -> None:
        self.max_series_per_metric = max_series_per_metric
        self.dropped: dict[str, int] = {}
        self._lock = threading.Lock()
        self._seen: dict[int, set[int]] = {}  # day -> fingerprints recorded
        self._per_metric: dict[tuple[int, str], int] = {}  # (day, name) -> series
        self._refused: dict[int, set[int]] = {}  # day -> fingerprints refused

    def preload(self, rows: Iterable[tuple[int, str, int]]) -> None:
        """Record ``(day, metric_name, fingerprint)`` series already stored."""
        with self._lock:
            for day, name, fp in rows:
                seen = self._seen.setdefault(day, set())
                if fp not in seen:
                    seen.add(fp)
                    self._per_metric[(day, name)] = self._per_metric.get((day, name), 0) + 1

    def admit(self, table: pa.Table) -> tuple[list[bool], list[int]]:
        """Decide a normalized batch's rows.

        Returns:
            ``(keep, new)``: per row whether it may be written, and the indexes
            of the rows whose (day, series) is new to the store (one per pair),
            whose series rows must be written with them.
        """
        fps = table.column("fingerprint").to_numpy().tolist()
        names = table.column("metric_name").to_pylist()
        days = sample_days(table).tolist()
        keep = [True] * len(fps)
        new: list[int] = []
        limit = self.max_series_per_metric
        with self._lock:
            self._forget_old_days(days)
            for i, (fp, day) in enumerate(zip(fps, days, strict=True)):
                seen = self._seen.setdefault(day, set())
                if fp in seen:
                    continue
                name = names[i]
                count = self._per_metric.get((day, name), 0)
                if limit and count >= limit:
                    keep[i] = False
                    refused = self._refused.setdefault(day, set())
                    if fp not in refused:
                        refused.add(fp)
                        self.dropped[name] = self.dropped.get(name, 0) + 1
                    continue
                seen.add(fp)
                self._per_metric[(day, name)] = count + 1
                new.append(i)
        return keep, new

    def forget(self, rows: pa.Table) -> None:
        """Undo :meth:`admit` for ``rows`` (new series whose insert failed)."""
        fps = rows.column("fingerprint").to_numpy().tolist()
        names = rows.column("metric_name").to_pylist()
        days = sample_days(rows).tolist()
        with self._lock:
            for fp, name, day in zip(fps, names, days, strict=True):
                seen = self._seen.get(day)
                if seen is not None and fp in seen:
                    seen.discard(fp)
                    self._per_metric[(day, name)] -= 1

    def _forget_old_days(self, days: list[int]) -> None:
        """Keep bookkeeping for the last few days written (memory stays bounded)."""
        if len(self._seen) <= 8:
            return
        newest = max(max(self._seen), max(days, default=0))
        for day in [d for d in self._seen if d < newest - 7]:
            del self._seen[day]
            self._refused.pop(day, None)
        for key in [k for k in self._per_metric if k[0] < newest - 7]:
            del self._per_metric[key]


class _SampleWriterAdapter:
    """Lets BatchWriter (which calls ``write_spans``) write samples."""

    def __init__(self, store: MetricWriter) -> None:
        self._store = store

    def write_spans(self, batch: pa.Table) -> None:
        self._store.write_samples(batch)


def sample_batch_writer(store: MetricWriter, **options: Any) -> BatchWriter:
    """A :class:`BatchWriter` batching samples into ``store.write_samples``;
    ``options`` are BatchWriter's. Samples are checked against SAMPLE_SCHEMA
    on submit."""
    return BatchWriter(
        _SampleWriterAdapter(store), normalize=normalize_samples, rows_name="sample", **options
    )
