"""Prometheus remote write 1.0 on the wire: the messages, a bulk reader, an encoder.

The messages are those of Prometheus's ``prompb/remote.proto`` and
``prompb/types.proto`` (package ``prometheus``), as the remote write 1.0
specification fixes them (https://prometheus.io/docs/specs/remote_write_spec/,
"Protocol")::

    WriteRequest   { repeated TimeSeries timeseries = 1; reserved 2;
                     repeated MetricMetadata metadata = 3; }
    TimeSeries     { repeated Label labels = 1; repeated Sample samples = 2;
                     repeated Exemplar exemplars = 3; repeated Histogram histograms = 4; }
    Label          { string name = 1; string value = 2; }
    Sample         { double value = 1; int64 timestamp = 2; }
    Exemplar       { repeated Label labels = 1; double value = 2; int64 timestamp = 3; }
    MetricMetadata { MetricType type = 1; string metric_family_name = 2;
                     string help = 4; string unit = 5; }

``Histogram`` (native histograms) is declared with its field numbers so that
tests can send one; tinct stores none (see :mod:`tinct.collectors.remote_write`).
They are described by a ``FileDescriptorProto`` in a private descriptor pool
and made into classes by ``message_factory`` at import: no generated
``_pb2`` files, no protoc, nothing added to the default pool other
libraries share. :func:`encode_write_request` builds bodies with them.

Reading is the receiver's hot path, and walking those classes costs a
Python object for every series, label and sample they hand out. So
:func:`read_write_request` has upb (the C protobuf runtime) check and split
only the outer ``WriteRequest``, through a *wire-compatible view* in which
``timeseries`` and ``metadata`` are ``repeated bytes`` (same field numbers,
same length-delimited wire type), and then finds the label and sample
records of all series at once in numpy: every encoder writes a series as
its ``Label`` records (field 1) followed by its ``Sample`` records (field
2), each short enough for a one-byte length (protobuf "Encoding" guide,
"Length-Delimited Records"). A series' label records, as bytes, are the
key under which the receiver caches its decoded, validated labels
(Prometheus resends the same series in every request), and the samples are
read in bulk by :func:`sample_columns`. Any series laid out otherwise (long
labels, exemplars, histograms, fields in another order, unknown fields) is
parsed by upb through the view's ``TimeSeries``, so every valid encoding
gives the same result; the bulk path is only faster. In ``bench.remote_write``
(one core, series seen before) it decodes ~960k samples/s from requests of
one sample per series, the shape Prometheus sends, and ~1.3M/s from five
per series, where walking the generated classes decodes ~170k/s and ~530k/s
(and a pure-Python wire decoder was slower still).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, NamedTuple

import cramjam
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tinct.tracing.protowire import varint

__all__ = [
    "METRIC_TYPES",
    "WireRequest",
    "message_class",
    "view_class",
    "read_write_request",
    "sample_columns",
    "encode_write_request",
    "encode_metadata",
]

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_STR, _BYTES, _DBL, _I64 = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_DOUBLE, _F.TYPE_INT64
_U64, _S32, _S64, _U32 = _F.TYPE_UINT64, _F.TYPE_SINT32, _F.TYPE_SINT64, _F.TYPE_UINT32
_MSG, _ENUM = _F.TYPE_MESSAGE, _F.TYPE_ENUM

_PKG = "prometheus"
_VIEW_PKG = "tinct.remote_write_view"

# MetricMetadata.MetricType in prompb/types.proto, by number; the names are
# the lower-case ones /api/v1/metadata answers with.
METRIC_TYPES: tuple[str, ...] = (
    "unknown",
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "summary",
    "info",
    "stateset",
)

_Field = tuple[int, str, int, int, str]

# (message, fields as (number, name, type, label, type name)), prompb/types.proto.
_MESSAGES: tuple[tuple[str, tuple[_Field, ...]], ...] = (
    ("Label", ((1, "name", _STR, _OPT, ""), (2, "value", _STR, _OPT, ""))),
    ("Sample", ((1, "value", _DBL, _OPT, ""), (2, "timestamp", _I64, _OPT, ""))),
    ("Exemplar", (
        (1, "labels", _MSG, _REP, "Label"), (2, "value", _DBL, _OPT, ""),
        (3, "timestamp", _I64, _OPT, ""),
    )),
    ("BucketSpan", ((1, "offset", _S32, _OPT, ""), (2, "length", _U32, _OPT, ""))),
    # The oneofs count and zero_count are plain fields here: only the field
    # numbers matter to recognise a histogram, and tests set one of each.
    ("Histogram", (
        (1, "count_int", _U64, _OPT, ""), (2, "count_float", _DBL, _OPT, ""),
        (3, "sum", _DBL, _OPT, ""), (4, "schema", _S32, _OPT, ""),
        (5, "zero_threshold", _DBL, _OPT, ""), (6, "zero_count_int", _U64, _OPT, ""),
        (7, "zero_count_float", _DBL, _OPT, ""), (8, "negative_spans", _MSG, _REP, "BucketSpan"),
        (9, "negative_deltas", _S64, _REP, ""), (10, "negative_counts", _DBL, _REP, ""),
        (11, "positive_spans", _MSG, _REP, "BucketSpan"), (12, "positive_deltas", _S64, _REP, ""),
        (13, "positive_counts", _DBL, _REP, ""), (14, "reset_hint", _U32, _OPT, ""),
        (15, "timestamp", _I64, _OPT, ""),
    )),
    ("TimeSeries", (
        (1, "labels", _MSG, _REP, "Label"), (2, "samples", _MSG, _REP, "Sample"),
        (3, "exemplars", _MSG, _REP, "Exemplar"), (4, "histograms", _MSG, _REP, "Histogram"),
    )),
    ("MetricMetadata", (
        (1, "type", _ENUM, _OPT, "MetricMetadata.MetricType"),
        (2, "metric_family_name", _STR, _OPT, ""), (4, "help", _STR, _OPT, ""),
        (5, "unit", _STR, _OPT, ""),
    )),
    ("WriteRequest", (
        (1, "timeseries", _MSG, _REP, "TimeSeries"), (3, "metadata", _MSG, _REP, "MetricMetadata"),
    )),
)  # fmt: skip

# The reading view: same numbers and wire types, every submessage kept as
# its bytes.
_VIEW: tuple[tuple[str, tuple[_Field, ...]], ...] = (
    ("TimeSeries", (
        (1, "labels", _BYTES, _REP, ""), (2, "samples", _BYTES, _REP, ""),
        (3, "exemplars", _BYTES, _REP, ""), (4, "histograms", _BYTES, _REP, ""),
    )),
    ("WriteRequest", ((1, "timeseries", _BYTES, _REP, ""), (3, "metadata", _BYTES, _REP, ""))),
)  # fmt: skip


def _file(name: str, package: str, messages: Iterable[tuple[str, Sequence[_Field]]]) -> Any:
    fdp = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    for message_name, fields in messages:
        msg = fdp.message_type.add(name=message_name)
        for number, fname, ftype, label, type_name in fields:
            field = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = f".{package}.{type_name}"
        if message_name == "MetricMetadata":
            enum = msg.enum_type.add(name="MetricType")
            for number, type_name in enumerate(METRIC_TYPES):
                enum.value.add(name=type_name.upper(), number=number)
    return fdp


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    """A private pool holding both files (the default pool is left alone)."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file("tinct/prometheus_remote.proto", _PKG, _MESSAGES))
    pool.Add(_file("tinct/remote_write_view.proto", _VIEW_PKG, _VIEW))
    return pool


@cache
def message_class(name: str) -> Any:
    """A ``prometheus.*`` message class, e.g. ``message_class("WriteRequest")``."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"{_PKG}.{name}"))


@cache
def view_class(name: str) -> Any:
    """A message class of the reading view (``WriteRequest``, ``TimeSeries``)."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"{_VIEW_PKG}.{name}"))


# Build the classes now, at import, so the first request pays nothing and a
# broken descriptor fails at start-up rather than on a request.
for _name, _ in _MESSAGES:
    message_class(_name)
for _name, _ in _VIEW:
    view_class(_name)

# --- reading ----------------------------------------------------------------------

# Tags: field number << 3 | wire type 2 (length-delimited).
_LABEL_TAG, _SAMPLE_TAG = 0x0A, 0x12
# Series with more label records, or more sample records, than this go
# through upb (each bulk step is a few numpy passes over the series left).
_BULK_LABELS, _BULK_SAMPLES = 64, 16
# Zero bytes after the data: a gather a few bytes past a short last record
# stays in bounds whatever the lengths.
_PAD = bytes(32)


class WireRequest(NamedTuple):
    """A ``WriteRequest`` split into its series and samples (not yet decoded).

    Attributes:
        blob: uint8 array holding every sample record (and padding after).
        label_keys: per series, its ``Label`` records as sent (each ``0x0a
            <length> <Label>``): equal bytes mean the same labels.
        histograms: per series, how many native histogram samples it has.
        sample_series: per sample, in request order, the index of its series.
        sample_start: per sample, where its ``Sample`` bytes start in ``blob``.
        sample_length: per sample, how many bytes they are.
        metadata: the encoded ``MetricMetadata`` messages.
    """

    blob: np.ndarray
    label_keys: list[bytes]
    histograms: np.ndarray
    sample_series: np.ndarray
    sample_start: np.ndarray
    sample_length: np.ndarray
    metadata: Sequence[bytes]


def read_write_request(data: bytes | memoryview) -> WireRequest:
    """Split an uncompressed ``WriteRequest`` (see the module docstring).

    Thread-safe; CPU-bound.

    Raises:
        google.protobuf.message.DecodeError: not a valid ``WriteRequest``.
    """
    request = view_class("WriteRequest").FromString(data)
    series = request.timeseries
    n = len(series)
    lengths = np.fromiter(map(len, series), np.int64, n)
    joined = b"".join(series)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    blob = np.frombuffer(joined + _PAD, np.uint8)
    labels_end = _skip_records(blob, starts, ends, _LABEL_TAG, _BULK_LABELS)
    where, found = _sample_records(blob, labels_end, ends)
    slow = where != ends  # anything else in the series, or a long record
    slow_index = np.flatnonzero(slow).tolist()
    keys = [joined[a:b] for a, b in zip(starts.tolist(), labels_end.tolist(), strict=True)]
    histograms = np.zeros(n, np.int64)
    sample_series, sample_start, sample_length = found
    keep = ~slow[sample_series]
    parts = [sample_series[keep]], [sample_start[keep]], [sample_length[keep]]
    if slow_index:
        extra = _parse_slow(series, slow_index, keys, histograms, len(joined), parts)
        blob = np.frombuffer(joined + extra + _PAD, np.uint8)
    sample_series, sample_start, sample_length = (np.concatenate(p) for p in parts)
    # Records were found a step at a time across all series: back to request order.
    order = np.argsort(sample_series, kind="stable")
    return WireRequest(
        blob,
        keys,
        histograms,
        sample_series[order],
        sample_start[order],
        sample_length[order],
        request.metadata,
    )


def _skip_records(
    blob: np.ndarray, starts: np.ndarray, ends: np.ndarray, tag: int, most: int
) -> np.ndarray:
    """Per series, where its leading run of ``tag`` records with one-byte
    lengths ends (at most ``most`` of them)."""
    pos = starts.copy()
    for _ in range(most):
        at = np.minimum(pos, ends)  # a record may claim more than its series holds
        live = (pos < ends) & (blob[at] == tag)
        size = blob[at + 1].astype(np.int64)
        live &= size < 0x80
        if not live.any():
            break
        pos = np.where(live, pos + 2 + size, pos)
    return pos


def _sample_records(
    blob: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per series, where its run of sample records from ``starts`` ends, and
    the records found: (series index, start, length) arrays."""
    where = starts.copy()
    index = np.arange(len(starts))
    pos, end = starts, ends
    series: list[np.ndarray] = []
    found_start: list[np.ndarray] = []
    found_length: list[np.ndarray] = []
    for _ in range(_BULK_SAMPLES):
        at = np.minimum(pos, end)
        size = blob[at + 1].astype(np.int64)
        live = (pos < end) & (blob[at] == _SAMPLE_TAG) & (size < 0x80)
        index, pos, end, size = index[live], pos[live], end[live], size[live]
        if not len(index):
            break
        series.append(index)
        found_start.append(pos + 2)
        found_length.append(size)
        pos = pos + 2 + size
        where[index] = pos
    if not series:
        return where, (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return where, (
        np.concatenate(series),
        np.concatenate(found_start),
        np.concatenate(found_length),
    )


def _parse_slow(
    series: Sequence[bytes],
    slow_index: list[int],
    keys: list[bytes],
    histograms: np.ndarray,
    offset: int,
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]],
) -> bytes:
    """Read the series the bulk path can't through upb; returns their sample
    bytes (to append to the blob at ``offset``) and fills the rest in place."""
    view = view_class("TimeSeries")
    extra: list[bytes] = []
    for i in slow_index:
        parsed = view.FromString(series[i])
        # The key is the labels' canonical encoding: the same labels sent in
        # the bulk layout give the same bytes.
        keys[i] = b"".join(b"\x0a" + varint(len(label)) + label for label in parsed.labels)
        histograms[i] = len(parsed.histograms)
        samples = list(parsed.samples)
        sizes = np.fromiter(map(len, samples), np.int64, len(samples))
        parts[0].append(np.full(len(samples), i, np.int64))
        parts[1].append(offset + np.cumsum(sizes) - sizes)
        parts[2].append(sizes)
        offset += int(sizes.sum())
        extra.extend(samples)
    return b"".join(extra)


def sample_columns(
    blob: np.ndarray, start: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps int64, values float64) of the ``Sample`` records at
    ``blob[start:start + length]``.

    Read in numpy for all of them at once: every encoder writes a Sample as
    ``0x09 <8-byte little-endian double> 0x10 <varint timestamp>``, leaving
    out a field that is zero (proto3), and nothing else. Those layouts are
    read in bulk (values by their bytes, so NaN payloads and staleness
    markers survive); any other encoding goes through the generated
    ``Sample`` class. ``blob`` must extend at least 24 bytes past every record.

    Raises:
        google.protobuf.message.DecodeError: a record is not a valid ``Sample``.
    """
    n = len(start)
    has_value = (length >= 9) & (blob[start] == 0x09)
    at = start + np.where(has_value, 9, 0)
    rest = start + length - at
    has_time = (rest >= 2) & (blob[at] == 0x10)
    width = np.where(has_time, rest - 1, 0)  # bytes of the timestamp's varint
    fast = (rest == 0) | (has_time & (width <= 10))
    stamps = np.zeros(n, np.uint64)
    for j in range(10):
        byte = blob[at + 1 + j]
        inside = j < width
        # Every byte but the last has the continuation bit; the tenth holds
        # only bit 63.
        fast &= ~inside | ((j == width - 1) == (byte < 0x80))
        if j == 9:
            fast &= ~inside | (byte <= 1)
        stamps |= np.where(inside, (byte & 0x7F).astype(np.uint64) << np.uint64(7 * j), 0)
    gathered = np.ascontiguousarray(blob[(start + 1)[:, None] + np.arange(8)])
    values = np.where(has_value, gathered.view("<f8").ravel(), 0.0)
    times = stamps.view(np.int64)
    slow = np.flatnonzero(~fast)
    if len(slow):
        sample_class = message_class("Sample")
        for i in slow.tolist():
            a = int(start[i])
            sample = sample_class.FromString(blob[a : a + int(length[i])].tobytes())
            times[i] = sample.timestamp
            values[i] = sample.value
    return times, values


# --- encoding -------------------------------------------------------------------

# A series as encode_write_request takes it: labels in the order to send
# (senders must sort them by name), and (timestamp ms, value) samples.
_Series = tuple[Sequence[tuple[str, str]], Sequence[tuple[int, float]]]


def encode_metadata(metric: str, type: str, help: str = "", unit: str = "") -> Any:
    """A ``prometheus.MetricMetadata`` message (``type`` one of :data:`METRIC_TYPES`)."""
    return message_class("MetricMetadata")(
        type=METRIC_TYPES.index(type), metric_family_name=metric, help=help, unit=unit
    )


def encode_write_request(
    series: Iterable[_Series], metadata: Iterable[Any] = (), *, compress: bool = True
) -> bytes:
    """A remote write 1.0 body: a ``WriteRequest``, snappy block-compressed.

    Args:
        series: ``(labels, samples)`` pairs; labels are ``(name, value)``
            pairs sent in the given order (the spec asks senders to sort
            them by name and include ``__name__``), samples are
            ``(timestamp_ms, value)`` pairs. Values are sent bit for bit
            (a staleness marker stays one).
        metadata: ``MetricMetadata`` messages (:func:`encode_metadata`).
        compress: False returns the bare protobuf bytes.

    Thread-safe; CPU-bound.
    """
    label_cls, sample_cls = message_class("Label"), message_class("Sample")
    request = message_class("WriteRequest")()
    for labels, samples in series:
        ts = request.timeseries.add()
        ts.labels.extend(label_cls(name=n, value=v) for n, v in labels)
        ts.samples.extend(sample_cls(timestamp=t, value=v) for t, v in samples)
    request.metadata.extend(metadata)
    raw: bytes = request.SerializeToString()
    return bytes(cramjam.snappy.compress_raw(raw)) if compress else raw
