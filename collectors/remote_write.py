"""Decoding Prometheus remote write 1.0 requests into sample batches.

A request (https://prometheus.io/docs/specs/remote_write_spec/) is a
``prometheus.WriteRequest`` protobuf compressed with snappy's *block*
format (not the framed one), sent with ``Content-Type:
application/x-protobuf`` and ``Content-Encoding: snappy``. The messages are
in :mod:`tinct.collectors.remote_write_proto`; this module turns a body into
a :data:`~tinct.metrics.SAMPLE_SCHEMA` table and the metadata it carried.

Memory stays bounded whatever the client sends: snappy's block format
starts with the uncompressed length as a varint (snappy
``format_description.txt``, section 1), which is checked against
``max_decoded_bytes`` (and against the most a valid stream of that size can
expand to) before anything is decompressed.

What is stored follows Prometheus's receiver (``storage/remote/write_handler.go``;
behaviour checked by sending requests to Debian's Prometheus 2.42 with
``--web.enable-remote-write-receiver``, and read in current Prometheus):

* Labels are sorted by name (both sort them; the spec asks senders to);
  a label with an empty value is dropped, as 2.42 drops it (an empty value
  is the same as no label).
* Values are stored bit for bit, staleness markers included: a sender's
  stale NaN marks a series that went away, and reaches PromQL as one.
* A series is *invalid* when it has no ``__name__`` (2.42 stores it
  nameless; current Prometheus skips it), a duplicate label name (2.42
  answers 500 "label name is not unique" and rolls the whole request back;
  current Prometheus skips the series), a metric name outside
  ``[a-zA-Z_:][a-zA-Z0-9_:]*`` or a label name outside ``[a-zA-Z_][a-zA-Z0-9_]*``
  (the names PromQL can select; current Prometheus checks names, 2.42 does not).
* Native histograms (``TimeSeries.histograms``) are not stored: tinct has
  no native histogram type, as Prometheus 2.x has none without
  ``--enable-feature=native-histograms`` (2.42 then answers 500 "native
  histograms are disabled" and rolls the request back).
* A sample more than :data:`MAX_AHEAD_MS` ahead of the receiver's clock is
  refused, as current Prometheus refuses it (``timeLimitAppender``; 2.42
  stores it).
* Samples older than a series' last one, or repeating its timestamp, are
  stored: Prometheus's head refuses them ("out of order sample", 400), but
  tinct's store has no head and keeps one sample per timestamp, so a
  resent request does no harm.
* Exemplars are ignored (tinct keeps none from remote write yet).

Refusals are per series, not per request: the valid series of a request
are kept and :class:`InvalidSeriesError` carries them with the count and
the reason for the rest, which the receiver answers with 400 (Prometheus's
remote write 2.0 handler does the same). The spec has senders retry 5xx
and never 4xx, so a sender drops the request then, its valid part stored,
instead of retrying it forever as the 500s of 2.42 make it do. Metadata
(``WriteRequest.metadata``) becomes :class:`~tinct.metrics.MetricMetadata`.

Errors form one branch of tinct's tree, each with the HTTP status it is
answered with::

    DecodeError                        (tinct.errors)
    └── RemoteWriteError          400  not snappy, not a WriteRequest
        ├── InvalidSeriesError    400  some series refused; the rest decoded
        ├── BodyTooLargeError     413  also a TooLargeError
        └── UnsupportedBodyError  415  also an UnsupportedMediaError
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import cache
from itertools import repeat
from typing import Any

import cramjam
import numpy as np
import pyarrow as pa
from google.protobuf import message

from tinct.collectors.remote_write_proto import (
    METRIC_TYPES,
    WireRequest,
    message_class,
    read_write_request,
    sample_columns,
    view_class,
)
from tinct.errors import DecodeError, TooLargeError, UnsupportedMediaError
from tinct.metrics import NAME_LABEL, SAMPLE_SCHEMA, MetricMetadata, SeriesRef, fingerprint

__all__ = [
    "MAX_DECODED_BYTES",
    "MAX_AHEAD_MS",
    "PROTOBUF",
    "SNAPPY",
    "RemoteWriteError",
    "InvalidSeriesError",
    "BodyTooLargeError",
    "UnsupportedBodyError",
    "RemoteWriteDecoder",
    "check_headers",
    "decode_write_request",
    "decompress",
    "max_wire_bytes",
]

# Prometheus's own receiver has no limit; a default sender's request is well
# under 1 MiB decompressed (max_samples_per_send: 500 in 2.42, 2000 later).
MAX_DECODED_BYTES = 32 * 1024 * 1024
# Prometheus's maxAheadTime (storage/remote/write_handler.go).
MAX_AHEAD_MS = 10 * 60 * 1000
PROTOBUF = "application/x-protobuf"
SNAPPY = "snappy"
# The message a Content-Type "proto=" parameter may name for 1.0 (spec 2.0,
# "Content-Type"); 2.0's io.prometheus.write.v2.Request is not accepted.
_V1_MESSAGE = "prometheus.WriteRequest"

# Prometheus 2.x names (model.MetricNameRE, model.LabelNameRE).
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
# The series cache starts afresh past this many bytes of keys (encoded
# label sets), whatever their count: its memory is not the clients' choice.
_CACHE_KEY_BYTES = 64 * 1024 * 1024
# What a series' id is before the cache is asked (ids are rows >= 0, or
# small negative numbers for invalid series).
_UNKNOWN = -(2**62)
# Series columns of the cache, in SAMPLE_SCHEMA's types.
_SERIES_SCHEMA = pa.schema(list(SAMPLE_SCHEMA)[:4])


class RemoteWriteError(DecodeError):
    """A remote write body can't be decoded; ``status`` is the HTTP answer."""

    status = 400


class InvalidSeriesError(RemoteWriteError):
    """Some samples were refused; the valid rest of the request is attached.

    Attributes:
        samples: the request's valid samples (a SAMPLE_SCHEMA table, maybe empty).
        metadata: the request's metadata.
        refused: samples (float and histogram) refused.
    """

    status = 400

    def __init__(
        self, text: str, samples: pa.Table, metadata: list[MetricMetadata], refused: int
    ) -> None:
        super().__init__(text)
        self.samples = samples
        self.metadata = metadata
        self.refused = refused


class BodyTooLargeError(RemoteWriteError, TooLargeError):
    """The body, as sent or decompressed, is over its limit (HTTP 413)."""

    status = 413


class UnsupportedBodyError(RemoteWriteError, UnsupportedMediaError):
    """Content-Type or Content-Encoding is not remote write 1.0's (HTTP 415)."""

    status = 415


def check_headers(content_type: str | None, content_encoding: str | None) -> None:
    """Refuse a request that is not remote write 1.0 by its headers.

    The spec has senders send ``Content-Type: application/x-protobuf`` and
    ``Content-Encoding: snappy``; like Prometheus, a missing header is taken
    to mean those (older senders omit them), and anything else is refused.
    A ``proto=`` parameter other than ``prometheus.WriteRequest`` (remote
    write 2.0) is refused too.

    Raises:
        UnsupportedBodyError: another media type, message or coding (415).
    """
    if content_type and content_type.strip():
        media, *params = (p.strip() for p in content_type.split(";"))
        if media.lower() != PROTOBUF:
            raise UnsupportedBodyError(
                f"Content-Type {content_type.strip()[:100]!r} is not supported: remote write "
                f"1.0 bodies are {PROTOBUF}"
            )
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "proto" and value.strip().strip('"') != _V1_MESSAGE:
                raise UnsupportedBodyError(
                    f"Content-Type proto={value.strip()[:100]!r} is not supported: only remote "
                    f"write 1.0 ({_V1_MESSAGE}) is accepted"
                )
    if content_encoding and content_encoding.strip().lower() != SNAPPY:
        raise UnsupportedBodyError(
            f"Content-Encoding {content_encoding.strip()[:100]!r} is not supported: remote "
            f"write bodies are {SNAPPY} (block format)"
        )


def max_wire_bytes(max_decoded_bytes: int) -> int:
    """The longest snappy body that can decode to ``max_decoded_bytes``
    (snappy's ``MaxCompressedLength``: 32 + n + n / 6)."""
    return 32 + max_decoded_bytes + max_decoded_bytes // 6


def _uncompressed_length(body: bytes | memoryview) -> int:
    """The length a snappy block announces: a little-endian base-128 varint
    of at most 32 bits (snappy ``format_description.txt``, section 1)."""
    length = 0
    for i in range(min(len(body), 5)):
        byte = body[i]
        length |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            if length > 0xFFFFFFFF:
                break
            return length
    raise RemoteWriteError(
        "body is not snappy-compressed: no valid uncompressed length at its start "
        "(remote write bodies are snappy block format)"
    )


def decompress(body: bytes | memoryview, max_decoded_bytes: int = MAX_DECODED_BYTES) -> Any:
    """Decompress a snappy block-format body, refusing before allocating it
    when it announces more than ``max_decoded_bytes``.

    Returns:
        A buffer (``bytes``-like) of the uncompressed bytes.

    Raises:
        BodyTooLargeError: it announces more than ``max_decoded_bytes``.
        RemoteWriteError: not a valid snappy block.
    """
    length = _uncompressed_length(body)
    if length > max_decoded_bytes:
        raise BodyTooLargeError(
            f"body decompresses to {length} bytes, over the limit of {max_decoded_bytes} "
            "bytes (max_decoded_bytes); send smaller requests (queue_config.max_samples_per_send)"
        )
    # A snappy element expands at most 64 bytes from 3 (a copy with a
    # 2-byte offset), so a valid block is never more than ~21x its size:
    # a larger claim is corrupt, and is refused without allocating it.
    if length > 32 * len(body) + 64:
        raise RemoteWriteError(
            f"body is not valid snappy: it announces {length} bytes from only {len(body)}"
        )
    try:
        data = cramjam.snappy.decompress_raw(body)
    except cramjam.DecompressionError as exc:
        raise RemoteWriteError(f"body is not valid snappy (block format): {exc}") from exc
    if len(data) != length:
        raise RemoteWriteError(
            f"body is not valid snappy: {len(data)} bytes decoded, {length} announced"
        )
    return data


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _show(labels: Sequence[tuple[str, str]]) -> str:
    """``{__name__="up", job="node"}``, short enough for an error message."""
    text = ", ".join(f'{name}="{_quote(value)}"' for name, value in labels)
    return "{" + (text if len(text) <= 200 else text[:200] + "...") + "}"


def _series_ref(key: bytes) -> SeriesRef | str:
    """The series of an encoded label set (a series' Label records), or why
    it is invalid (module docstring)."""
    label_class = message_class("Label")
    sent: list[tuple[str, str]] = []
    # The key's records were framed by the reader; their contents are parsed here.
    for i, raw in enumerate(view_class("TimeSeries").FromString(key).labels):
        try:
            label = label_class.FromString(raw)
        except message.DecodeError as exc:
            return f"series with label {i} not a valid Label (names and values are UTF-8): {exc}"
        sent.append((label.name, label.value))
    sent.sort()
    for (a, _), (b, _) in zip(sent, sent[1:], strict=False):
        if a == b:
            return f'series {_show(sent)}: label name "{a}" is not unique'
    labels = tuple(p for p in sent if p[1] != "")
    name = ""
    keys: list[str] = []
    values: list[str] = []
    for k, v in labels:
        if k == NAME_LABEL:
            name = v
            continue
        if not _LABEL_NAME.match(k):
            return f'series {_show(sent)}: label name "{k}" is not valid ([a-zA-Z_][a-zA-Z0-9_]*)'
        keys.append(k)
        values.append(v)
    if not name:
        return f"series {_show(sent)}: has no {NAME_LABEL} label (every series needs a metric name)"
    if not _METRIC_NAME.match(name):
        return f'series {_show(sent)}: metric name "{name}" is not valid ([a-zA-Z_:][a-zA-Z0-9_:]*)'
    return (fingerprint(labels), name, keys, values)


def _metadata(encoded: Sequence[bytes]) -> list[MetricMetadata]:
    metadata_class = message_class("MetricMetadata")
    out = []
    for i, raw in enumerate(encoded):
        try:
            meta = metadata_class.FromString(raw)
        except message.DecodeError as exc:
            raise RemoteWriteError(f"metadata {i} is not a valid MetricMetadata: {exc}") from exc
        if not meta.metric_family_name:
            continue
        kind = METRIC_TYPES[meta.type] if 0 <= meta.type < len(METRIC_TYPES) else "unknown"
        out.append(MetricMetadata(meta.metric_family_name, kind, meta.help, meta.unit))
    return out


class _Known:
    """One generation of the series cache.

    ``ids`` maps a series' encoded labels to its row in ``table`` (the
    series' SAMPLE_SCHEMA columns), or to ``-1 - i`` for the invalid label
    sets, whose reason is ``problems[i]``. Rows are only ever appended, and
    a key is added to ``ids`` after its row, so a reader that finds a key
    without the lock also finds the row in the ``table`` it reads next.
    """

    def __init__(self) -> None:
        self.ids: dict[bytes, int] = {}
        self.table = _SERIES_SCHEMA.empty_table()
        self.problems: list[str] = []
        self.key_bytes = 0


class RemoteWriteDecoder:
    """Decodes remote write bodies, remembering the series it has seen.

    A sender repeats the same series in every request, so each label set
    is decoded and validated once, and its columns built once; later
    requests find it by its encoded bytes and copy its columns in Arrow.

    Args:
        max_cached_series: label sets remembered; past it (or past 64 MiB of
            encoded labels) the cache starts afresh.

    Threading: :meth:`decode` may run in several threads at once.
    """

    def __init__(self, max_cached_series: int = 262_144) -> None:
        self._max_cached = max_cached_series
        self._lock = threading.Lock()
        self._known = _Known()

    def decode(
        self,
        body: bytes | memoryview,
        *,
        max_decoded_bytes: int = MAX_DECODED_BYTES,
        max_timestamp_ms: int | None = None,
    ) -> tuple[pa.Table, list[MetricMetadata]]:
        """The samples and metadata of a snappy-compressed ``WriteRequest``.

        Args:
            body: the request body as sent.
            max_decoded_bytes: limit on the uncompressed body.
            max_timestamp_ms: samples after this are refused (``None``: none
                are); the receiver passes its clock plus :data:`MAX_AHEAD_MS`.

        Returns:
            ``(samples, metadata)``: a SAMPLE_SCHEMA table in request order,
            and the metadata sent.

        Raises:
            InvalidSeriesError: some samples were refused (see the module
                docstring); it carries the valid rest.
            BodyTooLargeError: over ``max_decoded_bytes``.
            RemoteWriteError: not snappy, or not a ``WriteRequest``.

        CPU-bound (about a microsecond a sample, ten more for each series new
        to the decoder); call it off the event loop.
        """
        data = decompress(body, max_decoded_bytes)
        try:
            wire = read_write_request(memoryview(data))
            times, values = sample_columns(wire.blob, wire.sample_start, wire.sample_length)
        except message.DecodeError as exc:
            raise RemoteWriteError(f"body is not a remote write WriteRequest: {exc}") from exc
        metadata = _metadata(wire.metadata)
        known = self._known
        keys = wire.label_keys
        ids = np.fromiter(map(known.ids.get, keys, repeat(_UNKNOWN)), np.int64, len(keys))
        misses = np.flatnonzero(ids == _UNKNOWN).tolist()
        if misses:
            ids[misses] = self._learn(known, [keys[i] for i in misses])
        table = known.table  # after learning: holds every row in ids
        rows = ids[wire.sample_series]
        keep = rows >= 0
        reason, problems = self._refusal(known, table, wire, ids)
        refused = int(len(rows) - keep.sum() + wire.histograms.sum())
        if max_timestamp_ms is not None:
            ahead = keep & (times > max_timestamp_ms)
            if ahead.any():
                late = int(ahead.sum())
                refused += late
                problems += 1
                keep &= ~ahead
                first = int(np.argmax(ahead))
                reason = reason or (
                    f"series {_show(_labels(table, int(rows[first])))}: sample at "
                    f"{int(times[first])} ms is more than {MAX_AHEAD_MS // 60_000} minutes "
                    f"ahead of tinct's clock ({late} such samples refused)"
                )
        if not keep.all():
            rows, times, values = rows[keep], times[keep], values[keep]
        samples = pa.Table.from_arrays(
            [
                *table.take(rows).columns,
                pa.array(times, pa.int64()),
                pa.array(values, pa.float64()),
            ],
            schema=SAMPLE_SCHEMA,
        )
        if problems:
            more = f" (and {problems - 1} more problems)" if problems > 1 else ""
            raise InvalidSeriesError(
                f"{refused} samples refused: {reason}{more}", samples, metadata, refused
            )
        return samples, metadata

    def _learn(self, known: _Known, keys: list[bytes]) -> list[int]:
        """Decode and validate label sets new to ``known``; their ids."""
        refs = {key: _series_ref(key) for key in keys}
        with self._lock:
            new = [(k, r) for k, r in refs.items() if k not in known.ids]
            valid = [(k, r) for k, r in new if not isinstance(r, str)]
            if valid:
                chunk = pa.table(
                    [
                        pa.array([r[0] for _, r in valid], pa.uint64()),
                        pa.array([r[1] for _, r in valid], pa.string()),
                        pa.array([r[2] for _, r in valid], pa.list_(pa.string())),
                        pa.array([r[3] for _, r in valid], pa.list_(pa.string())),
                    ],
                    schema=_SERIES_SCHEMA,
                )
                first = known.table.num_rows
                table = pa.concat_tables([known.table, chunk])
                # Few chunks keep take() fast; joining them now and then is
                # amortised over the requests that bring new series.
                known.table = table.combine_chunks() if table.column(0).num_chunks > 32 else table
            for key, ref in new:
                if isinstance(ref, str):
                    known.problems.append(ref)
                    known.ids[key] = -len(known.problems)
                else:
                    known.ids[key] = first
                    first += 1
                known.key_bytes += len(key)
            if len(known.ids) >= self._max_cached or known.key_bytes >= _CACHE_KEY_BYTES:
                self._known = _Known()  # requests under way keep the one they hold
            return [known.ids[key] for key in keys]

    @staticmethod
    def _refusal(
        known: _Known, table: pa.Table, wire: WireRequest, ids: np.ndarray
    ) -> tuple[str, int]:
        """Why the request's first refused series was refused, and how many
        series were (invalid, or with native histograms)."""
        refused = np.flatnonzero((ids < 0) | (wire.histograms > 0)).tolist()
        if not refused:
            return "", 0
        first = refused[0]
        row = int(ids[first])
        if row < 0:
            return known.problems[-1 - row], len(refused)
        reason = (
            f"series {_show(_labels(table, row))}: native histograms are not supported "
            f"({int(wire.histograms[first])} refused; send classic histograms)"
        )
        return reason, len(refused)


def _labels(table: pa.Table, row: int) -> list[tuple[str, str]]:
    """The labels of the series at ``row`` of a cache table, sorted."""
    series = table.slice(row, 1).to_pylist()[0]
    pairs = zip(series["label_keys"], series["label_values"], strict=True)
    return sorted([(NAME_LABEL, series["metric_name"]), *pairs])


@cache
def _default_decoder() -> RemoteWriteDecoder:
    return RemoteWriteDecoder()


def decode_write_request(
    body: bytes | memoryview,
    *,
    max_decoded_bytes: int = MAX_DECODED_BYTES,
    max_timestamp_ms: int | None = None,
) -> tuple[pa.Table, list[MetricMetadata]]:
    """Decode a remote write 1.0 body with a process-wide
    :class:`RemoteWriteDecoder` (see :meth:`RemoteWriteDecoder.decode`)."""
    return _default_decoder().decode(
        body, max_decoded_bytes=max_decoded_bytes, max_timestamp_ms=max_timestamp_ms
    )
