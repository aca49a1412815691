"""Metric samples as every layer hands them to the store.

A series is a label set including ``__name__``; its fingerprint is a stable
64-bit hash of the sorted labels, the same in every process and release, so
the series table can be keyed by it (as PromHouse and qryn key
``time_series``). Samples travel in columnar batches with
:data:`SAMPLE_SCHEMA`, built by :class:`SampleBuilder`: collectors, scrapes
and receivers append, the store writes the batch in two inserts (new series,
samples) without looking at rows one by one.

Timestamps are int64 Unix milliseconds, values float64. Prometheus marks a
series that went away with a *staleness marker*, a NaN with the bit pattern
:data:`STALE_NAN_BITS`; it must reach the store and come back bit for bit,
so code here never does arithmetic on values (which may turn it into an
ordinary NaN) and tests compare bits with :func:`is_stale`.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa

__all__ = [
    "SAMPLE_SCHEMA",
    "SAMPLE_COLUMNS",
    "STALE_NAN",
    "STALE_NAN_BITS",
    "NAME_LABEL",
    "Labels",
    "SeriesRef",
    "Matcher",
    "MetricMetadata",
    "Series",
    "SampleBuilder",
    "fingerprint",
    "is_stale",
    "sorted_labels",
]

NAME_LABEL = "__name__"
# Prometheus's value.StaleNaN (model/value/value.go).
STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]

# A series' labels, sorted by name, ``__name__`` included.
Labels = tuple[tuple[str, str], ...]
# A series as SampleBuilder caches it: (fingerprint, name, label keys, label values).
SeriesRef = tuple[int, str, list[str], list[str]]

SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("fingerprint", pa.uint64(), nullable=False),
        pa.field("metric_name", pa.string(), nullable=False),
        # Sorted by key, ``__name__`` excluded (it is metric_name).
        pa.field("label_keys", pa.list_(pa.string()), nullable=False),
        pa.field("label_values", pa.list_(pa.string()), nullable=False),
        pa.field("timestamp_ms", pa.int64(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
    ]
)
SAMPLE_COLUMNS = tuple(SAMPLE_SCHEMA.names)

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def is_stale(value: float) -> bool:
    """True for Prometheus's staleness marker (by bits, not any NaN)."""
    return math.isnan(value) and struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS


def sorted_labels(labels: Mapping[str, str]) -> Labels:
    """``labels`` as a sorted tuple, dropping empty values (Prometheus: an empty
    label value is the same as the label being absent)."""
    return tuple(sorted((k, v) for k, v in labels.items() if v != ""))


def fingerprint(labels: Labels) -> int:
    """Stable unsigned 64-bit hash of sorted ``labels`` (``__name__`` included)."""
    h = hashlib.blake2b(digest_size=8)
    for name, value in labels:
        h.update(name.encode())
        h.update(b"\xff")
        h.update(value.encode())
        h.update(b"\xff")
    return int.from_bytes(h.digest(), "little")


@dataclass(frozen=True)
class Series:
    """A stored series: its fingerprint and labels (``__name__`` included)."""

    fingerprint: int
    labels: dict[str, str]

    @property
    def name(self) -> str:
        return self.labels.get(NAME_LABEL, "")


# PromQL label matcher operators.
_OPS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True)
class Matcher:
    """A PromQL label matcher, e.g. ``Matcher("job", "=~", "node|redis")``.

    Regexes are RE2 and fully anchored, as in Prometheus; a label that is
    absent matches as the empty string.

    Raises:
        ValueError: unknown ``op``, or a bad label name.
    """

    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"matcher op must be one of {', '.join(_OPS)}, got {self.op!r}")
        if not _LABEL_NAME.match(self.name):
            raise ValueError(f"matcher label name {self.name!r} is not [a-zA-Z_][a-zA-Z0-9_]*")

    def matches(self, value: str) -> bool:
        """Whether a label value (``""`` when absent) passes, in Python."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = re.fullmatch(self.value, value, re.DOTALL) is not None
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True)
class MetricMetadata:
    """HELP/TYPE/UNIT of a metric family, as ``/api/v1/metadata`` returns it."""

    metric: str
    type: str
    help: str
    unit: str = ""


class SampleBuilder:
    """Collects samples into a :data:`SAMPLE_SCHEMA` table.

    Label sets seen before are not hashed again (a scrape repeats the same
    series every interval), so keep one builder per producer and call
    :meth:`take` for each batch. Not thread-safe.

    Args:
        max_cached: label sets whose fingerprint is remembered.
    """

    def __init__(self, max_cached: int = 1_000_000) -> None:
        self._cache: dict[Labels, SeriesRef] = {}
        self._max_cached = max_cached
        self._clear()

    def _clear(self) -> None:
        self._fps: list[int] = []
        self._names: list[str] = []
        self._keys: list[list[str]] = []
        self._values: list[list[str]] = []
        self._ts: list[int] = []
        self._vals: list[float] = []

    def __len__(self) -> int:
        return len(self._ts)

    def series(self, labels: Labels) -> SeriesRef:
        """The cached reference of the series ``labels`` (sorted, ``__name__`` in it)."""
        ref = self._cache.get(labels)
        if ref is None:
            name = ""
            keys: list[str] = []
            values: list[str] = []
            for k, v in labels:
                if k == NAME_LABEL:
                    name = v
                else:
                    keys.append(k)
                    values.append(v)
            ref = (fingerprint(labels), name, keys, values)
            if len(self._cache) >= self._max_cached:
                self._cache.clear()
            self._cache[labels] = ref
        return ref

    def add(self, labels: Labels, timestamp_ms: int, value: float) -> None:
        """Append one sample of the series ``labels`` (sorted, ``__name__`` in it)."""
        self.add_ref(self.series(labels), timestamp_ms, value)

    def add_ref(self, ref: SeriesRef, timestamp_ms: int, value: float) -> None:
        """Append one sample of a series from :meth:`series` (the hot path)."""
        self._fps.append(ref[0])
        self._names.append(ref[1])
        self._keys.append(ref[2])
        self._values.append(ref[3])
        self._ts.append(timestamp_ms)
        self._vals.append(value)

    def add_mapping(self, labels: Mapping[str, str], timestamp_ms: int, value: float) -> None:
        """Append one sample; ``labels`` is any mapping with ``__name__``."""
        self.add(sorted_labels(labels), timestamp_ms, value)

    def extend(self, samples: Iterable[tuple[Labels, int, float]]) -> None:
        for labels, ts, value in samples:
            self.add(labels, ts, value)

    def take(self) -> pa.Table:
        """The samples added since the last ``take``, as a table; the builder empties."""
        table = pa.table(
            [
                pa.array(self._fps, pa.uint64()),
                pa.array(self._names, pa.string()),
                pa.array(self._keys, pa.list_(pa.string())),
                pa.array(self._values, pa.list_(pa.string())),
                pa.array(self._ts, pa.int64()),
                pa.array(self._vals, pa.float64()),
            ],
            schema=SAMPLE_SCHEMA,
        )
        self._clear()
        return table
