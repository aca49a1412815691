"""Remote write 1.0: decoding bodies, and the ``POST /api/v1/write`` route."""

from __future__ import annotations

import math
import random
import struct
import threading
from collections.abc import Iterator
from typing import Any

import cramjam
import pyarrow as pa
import pytest
from starlette.applications import Starlette

from tests.asgi import AppClient
from tinct.collectors import remote_write
from tinct.collectors.remote_write import (
    MAX_DECODED_BYTES,
    BodyTooLargeError,
    InvalidSeriesError,
    RemoteWriteDecoder,
    RemoteWriteError,
    UnsupportedBodyError,
    check_headers,
    decode_write_request,
)
from tinct.collectors.remote_write_proto import (
    encode_metadata,
    encode_write_request,
    message_class,
)
from tinct.errors import DecodeError, TooLargeError, UnsupportedMediaError
from tinct.metrics import SAMPLE_SCHEMA, STALE_NAN, Matcher, MetricMetadata, fingerprint, is_stale
from tinct.remote_write_api import REMOTE_WRITE_PATH, RemoteWriteAPI
from tinct.storage import InMemoryMetricStore, QueueFullError
from tinct.tracing.protowire import varint

NOW_MS = 1_700_000_000_000
HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def bits(value: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


def rows(table: pa.Table) -> list[tuple[dict[str, str], int, float]]:
    out = []
    for row in table.to_pylist():
        labels = dict(zip(row["label_keys"], row["label_values"], strict=True))
        labels["__name__"] = row["metric_name"]
        out.append((labels, row["timestamp_ms"], row["value"]))
    return out


def snappy(raw: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(raw))


def histogram_request(name: str, with_samples: bool = False) -> bytes:
    request = message_class("WriteRequest")()
    series = request.timeseries.add()
    series.labels.add(name="__name__", value=name)
    if with_samples:
        series.samples.add(value=5.0, timestamp=NOW_MS)
    hist = series.histograms.add(count_int=3, sum=2.0, schema=0, timestamp=NOW_MS)
    hist.positive_spans.add(offset=0, length=1)
    hist.positive_deltas.append(3)
    good = request.timeseries.add()
    good.labels.add(name="__name__", value="good")
    good.samples.add(value=1.0, timestamp=NOW_MS)
    return snappy(request.SerializeToString())


# --- decoding ---------------------------------------------------------------


def test_round_trip_keeps_names_labels_values_and_timestamps() -> None:
    values = [0.0, -0.0, 1.5, -2.25e-300, 1e308, math.inf, -math.inf, math.nan, STALE_NAN]
    stamps = [NOW_MS + i for i in range(len(values))]
    series = [
        (
            [("__name__", "http_requests_total"), ("code", "200"), ("path", '/a"b\\c\nd')],
            list(zip(stamps, values, strict=True)),
        ),
        ([("__name__", "temp_celsius"), ("city", "Zürich 東京 🌡")], [(0, 1.0), (-1, 2.0)]),
        ([("__name__", "old:recorded_rule")], [(-86_400_000 * 400, 3.0), (1, 4.0)]),
    ]
    table, metadata = decode_write_request(encode_write_request(series))
    assert table.schema == SAMPLE_SCHEMA
    assert metadata == []
    got = rows(table)
    assert [r[0] for r in got[:9]] == [
        {"__name__": "http_requests_total", "code": "200", "path": '/a"b\\c\nd'}
    ] * 9
    assert [r[1] for r in got[:9]] == stamps
    # Every value bit for bit: NaN stays NaN, the staleness marker stays one,
    # -0.0 keeps its sign (0.0 is left out on the wire and read back as 0.0).
    assert [bits(r[2]) for r in got[:9]] == [bits(v) for v in values]
    assert is_stale(got[8][2]) and not is_stale(got[7][2]) and math.isnan(got[7][2])
    assert got[9:11] == [
        ({"__name__": "temp_celsius", "city": "Zürich 東京 🌡"}, 0, 1.0),
        ({"__name__": "temp_celsius", "city": "Zürich 東京 🌡"}, -1, 2.0),
    ]
    assert [r[1] for r in got[11:]] == [-86_400_000 * 400, 1]
    fps = table.column("fingerprint").to_pylist()
    assert fps[0] == fingerprint(
        (("__name__", "http_requests_total"), ("code", "200"), ("path", '/a"b\\c\nd'))
    )


def test_samples_in_unusual_but_valid_encodings_are_read_too() -> None:
    # Fields in reverse order, a repeated field (last wins), an unknown field:
    # valid protobuf that the bulk reader leaves to the generated class.
    value = struct.pack("<d", 7.5)
    odd = [
        b"\x10\x05\x09" + value,
        b"\x09" + struct.pack("<d", 1.0) + b"\x09" + value + b"\x10\x06",
        b"\x09" + value + b"\x10\x07\x18\x01",
        b"",
        b"\x10" + b"\xff" * 9 + b"\x01",  # timestamp -1 (ten-byte varint)
    ]
    request = message_class("WriteRequest")()
    series = request.timeseries.add()
    series.labels.add(name="__name__", value="odd")
    raw = request.SerializeToString()
    # Append the samples by hand, as length-delimited field 2 of the series.
    body = b"".join(b"\x12" + bytes([len(s)]) + s for s in odd)
    inner = raw[2:] + body
    raw = b"\x0a" + bytes([len(inner)]) + inner
    table, _ = decode_write_request(snappy(raw))
    assert [(r[1], r[2]) for r in rows(table)] == [
        (5, 7.5),
        (6, 7.5),
        (7, 7.5),
        (0, 0.0),
        (-1, 0.0),
    ]


def _record(field: int, payload: bytes) -> bytes:
    return bytes([field << 3 | 2]) + varint(len(payload)) + payload


def test_every_valid_layout_decodes_as_the_generated_classes_read_it() -> None:
    """The bulk reader against the generated messages, on seeded random series
    in layouts it reads in bulk and layouts it leaves to upb: long labels,
    many labels or samples, samples before or among labels, exemplars,
    unknown fields, zero, negative and NaN samples."""
    rng = random.Random(11)
    label_class, sample_class = message_class("Label"), message_class("Sample")
    exemplar = message_class("Exemplar")(value=1.0, timestamp=5).SerializeToString()
    decoder = RemoteWriteDecoder()
    for _ in range(30):
        request, expected = b"", []
        for i in range(rng.randrange(0, 12)):
            labels = [("__name__", f"m{rng.randrange(5)}"), ("i", str(i))]
            labels += [
                (f"l{j}", "v" * rng.choice((0, 1, 5, 130))) for j in range(rng.choice((0, 3, 70)))
            ]
            rng.shuffle(labels)
            samples = [
                (
                    rng.choice((0, -1, NOW_MS + k, -(2**62))),
                    rng.choice((0.0, -1.5, math.nan, STALE_NAN, k)),
                )
                for k in range(rng.choice((0, 1, 3, 17, 40)))
            ]
            label_records = [
                _record(1, label_class(name=n, value=v).SerializeToString()) for n, v in labels
            ]
            sample_records = [
                _record(2, sample_class(timestamp=t, value=v).SerializeToString())
                for t, v in samples
            ]
            layout = rng.choice(("bulk", "bulk", "samples first", "mixed", "exemplar", "unknown"))
            if layout == "samples first":
                records = sample_records + label_records
            elif layout == "mixed":
                records = (
                    label_records[:1] + sample_records[:2] + label_records[1:] + sample_records[2:]
                )
            else:
                records = label_records + sample_records
                if layout == "exemplar":
                    records.append(_record(3, exemplar))
                elif layout == "unknown":
                    records.insert(rng.randrange(len(records) + 1), b"\x78\x01")  # field 15, varint
            request += _record(1, b"".join(records))
            name = dict(labels)["__name__"]
            kept = sorted((k, v) for k, v in labels if v and k != "__name__")
            expected += [({"__name__": name, **dict(kept)}, t, bits(v)) for t, v in samples]
        table, _ = decoder.decode(snappy(request))
        got = [(labels, t, bits(v)) for labels, t, v in rows(table)]
        assert got == expected
        parsed = message_class("WriteRequest").FromString(request)
        assert len(got) == sum(len(ts.samples) for ts in parsed.timeseries)


def test_unsorted_labels_are_sorted_and_empty_values_dropped() -> None:
    body = encode_write_request(
        [([("zone", "b"), ("__name__", "up"), ("empty", ""), ("app", "x")], [(NOW_MS, 1.0)])]
    )
    table, _ = decode_write_request(body)
    assert table.column("label_keys").to_pylist() == [["app", "zone"]]
    assert table.column("label_values").to_pylist() == [["x", "b"]]
    assert table.column("fingerprint").to_pylist() == [
        fingerprint((("__name__", "up"), ("app", "x"), ("zone", "b")))
    ]


def test_metadata_is_decoded() -> None:
    body = encode_write_request(
        [],
        [
            encode_metadata("http_requests_total", "counter", "Requests.", ""),
            encode_metadata("latency_seconds", "histogram", "Latency.", "seconds"),
            encode_metadata("", "gauge", "no family name: skipped"),
        ],
    )
    table, metadata = decode_write_request(body)
    assert table.num_rows == 0
    assert metadata == [
        MetricMetadata("http_requests_total", "counter", "Requests.", ""),
        MetricMetadata("latency_seconds", "histogram", "Latency.", "seconds"),
    ]


def test_an_empty_request_decodes_to_nothing() -> None:
    table, metadata = decode_write_request(encode_write_request([]))
    assert table.num_rows == 0 and metadata == []


def test_the_series_cache_gives_the_same_answers() -> None:
    decoder = RemoteWriteDecoder(max_cached_series=2)
    for i in range(5):
        body = encode_write_request(
            [([("__name__", f"m{j}"), ("i", str(j))], [(NOW_MS + i, float(i))]) for j in range(3)]
            + [([("job", "no-name")], [(NOW_MS, 1.0)])]
        )
        with pytest.raises(InvalidSeriesError) as caught:
            decoder.decode(body)
        assert caught.value.refused == 1
        assert [r[0]["__name__"] for r in rows(caught.value.samples)] == ["m0", "m1", "m2"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([("job", "x")], "has no __name__ label"),
        ([("__name__", ""), ("job", "x")], "has no __name__ label"),
        ([("__name__", "up"), ("a", "1"), ("a", "2")], 'label name "a" is not unique'),
        ([("__name__", "up"), ("1bad", "x")], 'label name "1bad" is not valid'),
        ([("__name__", "up"), ("bad-name", "x")], 'label name "bad-name" is not valid'),
        ([("__name__", "bad-metric.name")], 'metric name "bad-metric.name" is not valid'),
        ([], "has no __name__ label"),
    ],
)
def test_invalid_series_are_refused_and_the_rest_kept(
    labels: list[tuple[str, str]], message: str
) -> None:
    body = encode_write_request(
        [
            ([("__name__", "good")], [(NOW_MS, 1.0)]),
            (labels, [(NOW_MS, 2.0), (NOW_MS + 1, 3.0)]),
        ]
    )
    with pytest.raises(InvalidSeriesError) as caught:
        decode_write_request(body)
    error = caught.value
    assert error.status == 400 and isinstance(error, DecodeError)
    assert message in str(error) and "2 samples refused" in str(error)
    assert error.refused == 2
    assert rows(error.samples) == [({"__name__": "good"}, NOW_MS, 1.0)]


def test_many_refused_series_are_counted_and_the_first_named() -> None:
    body = encode_write_request(
        [([("job", f"j{i}")], [(NOW_MS, 1.0)]) for i in range(1000)]
        + [([("__name__", "ok"), ("i", str(i))], [(NOW_MS, 1.0)]) for i in range(3)]
        + [([("__name__", "up")], [(NOW_MS, 1.0), (NOW_MS, 2.0)])] * 2  # twice, same samples
    )
    with pytest.raises(InvalidSeriesError) as caught:
        decode_write_request(body)
    assert str(caught.value).startswith('1000 samples refused: series {job="j0"}: has no __name__')
    assert str(caught.value).endswith("(and 999 more problems)")
    assert caught.value.samples.num_rows == 3 + 4


def test_decoding_from_many_threads_gives_each_its_own_answer() -> None:
    decoder = RemoteWriteDecoder(max_cached_series=50)  # starts afresh again and again
    bodies = [
        encode_write_request(
            [
                ([("__name__", f"m{(t * 7 + i) % 120}"), ("t", str(t))], [(NOW_MS + t, float(i))])
                for i in range(40)
            ]
        )
        for t in range(8)
    ]
    expected = [rows(decode_write_request(b)[0]) for b in bodies]
    failures: list[str] = []

    def work(t: int) -> None:
        for _ in range(30):
            got = rows(decoder.decode(bodies[t])[0])
            if got != expected[t]:
                failures.append(f"thread {t}: {got[:2]} != {expected[t][:2]}")
                return

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures


def test_a_label_that_is_not_utf8_refuses_its_series() -> None:
    request = message_class("WriteRequest")()
    raw = request.SerializeToString()
    label = b"\x0a\x08__name__\x12\x02\xff\xfe"
    sample = b"\x12\x0b\x09" + struct.pack("<d", 1.0) + b"\x10\x01"
    series = b"\x0a" + bytes([len(label)]) + label + sample
    raw = b"\x0a" + bytes([len(series)]) + series
    with pytest.raises(InvalidSeriesError, match="not a valid Label") as caught:
        decode_write_request(snappy(raw))
    assert caught.value.refused == 1


@pytest.mark.parametrize("with_samples", [False, True])
def test_native_histograms_are_refused_by_name(with_samples: bool) -> None:
    with pytest.raises(InvalidSeriesError, match="native histograms are not supported") as caught:
        decode_write_request(histogram_request("latency", with_samples))
    # The histogram is refused; float samples (of that series and others) stay.
    assert caught.value.refused == 1
    expected = [({"__name__": "latency"}, NOW_MS, 5.0)] if with_samples else []
    assert rows(caught.value.samples) == [*expected, ({"__name__": "good"}, NOW_MS, 1.0)]


def test_samples_too_far_ahead_are_refused() -> None:
    body = encode_write_request(
        [([("__name__", "m")], [(NOW_MS, 1.0), (NOW_MS + 600_001, 2.0), (NOW_MS + 600_000, 3.0)])]
    )
    with pytest.raises(InvalidSeriesError, match="more than 10 minutes ahead") as caught:
        decode_write_request(body, max_timestamp_ms=NOW_MS + 600_000)
    assert caught.value.refused == 1
    assert [r[1] for r in rows(caught.value.samples)] == [NOW_MS, NOW_MS + 600_000]
    table, _ = decode_write_request(body)  # no limit given: all kept
    assert table.num_rows == 3


def test_corrupted_requests_raise_only_remote_write_errors() -> None:
    """Seeded mutations of a valid request: decoded or refused, never a crash."""
    rng = random.Random(7)
    raw = encode_write_request(
        [
            (
                [("__name__", f"m{i}"), ("job", "j"), ("i", str(i))],
                [(NOW_MS + k, k * 0.5) for k in range(3)],
            )
            for i in range(4)
        ]
        + [([("__name__", "zero")], [(0, 0.0), (-5, 0.0)])],
        [encode_metadata("m0", "counter", "Help.")],
        compress=False,
    )
    decoder = RemoteWriteDecoder()
    outcomes = set()
    for _ in range(1500):
        mutated = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        if rng.random() < 0.2:
            del mutated[rng.randrange(len(mutated)) :]
        try:
            table, _ = decoder.decode(snappy(bytes(mutated)))
        except RemoteWriteError as exc:
            outcomes.add(type(exc).__name__)
            continue
        outcomes.add("decoded")
        assert table.schema == SAMPLE_SCHEMA
    assert outcomes >= {"decoded", "RemoteWriteError", "InvalidSeriesError"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not snappy-compressed"),
        (b"\xff\xff\xff\xff\xff\xff", "not snappy-compressed"),
        (b"\x20this is plain text, not snappy", "not valid snappy"),
        (b'{"json": true}', "not valid snappy"),
    ],
)
def test_bodies_that_are_not_snappy_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(RemoteWriteError, match=message) as caught:
        decode_write_request(body)
    assert caught.value.status == 400


def test_framed_snappy_and_raw_protobuf_are_refused() -> None:
    raw = encode_write_request([([("__name__", "up")], [(NOW_MS, 1.0)])], compress=False)
    for body in (bytes(cramjam.snappy.compress(raw)), raw):
        with pytest.raises(RemoteWriteError) as caught:
            decode_write_request(body)
        assert caught.value.status == 400


def test_truncated_bodies_are_refused() -> None:
    body = encode_write_request([([("__name__", "up")], [(NOW_MS + i, 1.0) for i in range(50)])])
    for cut in (1, 2, len(body) // 2, len(body) - 1):
        with pytest.raises(RemoteWriteError, match="snappy") as caught:
            decode_write_request(body[:cut])
        assert caught.value.status == 400


def test_snappy_that_is_not_a_write_request_is_refused() -> None:
    with pytest.raises(RemoteWriteError, match="not a remote write WriteRequest") as caught:
        decode_write_request(snappy(b"\x0a\x05ab"))
    assert caught.value.status == 400


def test_an_oversized_length_is_refused_before_decompressing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(body: Any) -> bytes:
        raise AssertionError("decompressed a body over the limit")

    monkeypatch.setattr(cramjam.snappy, "decompress_raw", never)
    # Announces 4 GiB - 1 in five bytes.
    with pytest.raises(BodyTooLargeError, match=f"limit of {MAX_DECODED_BYTES} bytes") as caught:
        decode_write_request(b"\xff\xff\xff\xff\x0f" + b"\x00" * 10)
    assert caught.value.status == 413 and isinstance(caught.value, TooLargeError)
    assert "max_decoded_bytes" in str(caught.value)
    # Under the limit but more than so few bytes can hold: corrupt, not allocated.
    with pytest.raises(RemoteWriteError, match="announces 1048576 bytes from only 8"):
        decode_write_request(b"\x80\x80\x40" + b"\x00" * 5)


def test_the_decoded_limit_is_configurable() -> None:
    body = encode_write_request([([("__name__", "up")], [(NOW_MS + i, 1.0) for i in range(100)])])
    with pytest.raises(BodyTooLargeError, match="over the limit of 1000 bytes"):
        decode_write_request(body, max_decoded_bytes=1000)


@pytest.mark.parametrize(
    ("content_type", "content_encoding", "message"),
    [
        ("application/json", "snappy", "Content-Type 'application/json' is not supported"),
        ("text/plain", None, "Content-Type 'text/plain' is not supported"),
        (
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "snappy",
            "proto='io.prometheus.write.v2.Request' is not supported",
        ),
        ("application/x-protobuf", "gzip", "Content-Encoding 'gzip' is not supported"),
        ("application/x-protobuf", "identity", "Content-Encoding 'identity' is not supported"),
    ],
)
def test_wrong_content_type_or_encoding_is_refused(
    content_type: str, content_encoding: str | None, message: str
) -> None:
    with pytest.raises(UnsupportedBodyError, match=message) as caught:
        check_headers(content_type, content_encoding)
    assert caught.value.status == 415 and isinstance(caught.value, UnsupportedMediaError)


@pytest.mark.parametrize(
    ("content_type", "content_encoding"),
    [
        ("application/x-protobuf", "snappy"),
        ("Application/X-Protobuf; charset=utf-8", "SNAPPY"),
        ("application/x-protobuf;proto=prometheus.WriteRequest", "snappy"),
        (None, None),  # older senders: taken as remote write 1.0, as Prometheus does
        ("", ""),
    ],
)
def test_remote_write_headers_are_accepted(
    content_type: str | None, content_encoding: str | None
) -> None:
    check_headers(content_type, content_encoding)


# --- the API ------------------------------------------------------------------


class Sink:
    """A sample sink in front of an in-memory store; ``full`` makes it refuse."""

    def __init__(self) -> None:
        self.store = InMemoryMetricStore()
        self.full = False
        self.batches = 0

    def __call__(self, table: pa.Table) -> None:
        if self.full:
            raise QueueFullError("sample write queue full: 10 rows pending, limit 10; retry later")
        self.batches += 1
        self.store.write_samples(table)

    def stored(self, name: str) -> list[tuple[int, float]]:
        series = self.store.series([Matcher("__name__", "=", name)], -(2**62), 2**62)
        table = self.store.samples([s.fingerprint for s in series], -(2**62), 2**62)
        return list(zip(table["timestamp_ms"].to_pylist(), table["value"].to_pylist(), strict=True))


class Api:
    def __init__(self, api: RemoteWriteAPI, client: AppClient, sink: Sink) -> None:
        self.api, self.client, self.sink = api, client, sink
        self.writer: Sink | None = sink

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(REMOTE_WRITE_PATH, content=body, headers=headers or HEADERS)


@pytest.fixture
def api() -> Iterator[Api]:
    sink = Sink()
    holder: dict[str, Any] = {"writer": sink}
    remote = RemoteWriteAPI(
        lambda: holder["writer"],
        lambda: sink.store.write_metadata,
        None,
        max_decoded_bytes=1 << 20,
        clock=lambda: NOW_MS / 1000,
    )
    wrapper = Api(remote, AppClient(Starlette(routes=remote.routes())), sink)
    wrapper.holder = holder  # type: ignore[attr-defined]
    yield wrapper


def test_api_stores_samples_and_answers_204(api: Api) -> None:
    body = encode_write_request(
        [
            ([("__name__", "up"), ("job", "node")], [(NOW_MS - 1000, 1.0), (NOW_MS, STALE_NAN)]),
            ([("__name__", "temp")], [(NOW_MS, -3.5)]),
        ],
        [encode_metadata("up", "gauge", "Target up.")],
    )
    response = api.post(body)
    assert response.status_code == 204 and response.content == b""
    stored = api.sink.stored("up")
    assert stored[0] == (NOW_MS - 1000, 1.0)
    assert stored[1][0] == NOW_MS and is_stale(stored[1][1])
    assert api.sink.stored("temp") == [(NOW_MS, -3.5)]
    assert api.sink.store.metadata("up") == [MetricMetadata("up", "gauge", "Target up.")]
    assert (api.api.accepted_samples, api.api.refused_samples) == (3, 0)


def test_api_keeps_the_valid_part_and_answers_400_naming_the_problem(api: Api) -> None:
    body = encode_write_request(
        [
            ([("__name__", "good")], [(NOW_MS, 1.0)]),
            ([("__name__", "dup"), ("a", "1"), ("a", "2")], [(NOW_MS, 2.0)]),
        ]
    )
    response = api.post(body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert '1 samples refused: series {__name__="dup", a="1", a="2"}' in response.text
    assert 'label name "a" is not unique' in response.text
    assert api.sink.stored("good") == [(NOW_MS, 1.0)]
    assert (api.api.accepted_samples, api.api.refused_samples) == (1, 1)


def test_api_refuses_native_histograms_with_400(api: Api) -> None:
    response = api.post(histogram_request("latency"))
    assert response.status_code == 400
    assert 'series {__name__="latency"}: native histograms are not supported' in response.text
    assert api.sink.stored("good") == [(NOW_MS, 1.0)]
    assert api.sink.stored("latency") == []
    assert api.api.refused_samples == 1


def test_api_refuses_samples_more_than_ten_minutes_ahead(api: Api) -> None:
    response = api.post(encode_write_request([([("__name__", "m")], [(NOW_MS + 700_000, 1.0)])]))
    assert response.status_code == 400 and "more than 10 minutes ahead" in response.text


@pytest.mark.parametrize(
    ("headers", "status", "text"),
    [
        ({"Content-Type": "application/json", "Content-Encoding": "snappy"}, 415, "Content-Type"),
        ({"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, 415, "gzip"),
        ({}, 204, ""),
    ],
)
def test_api_checks_headers(api: Api, headers: dict[str, str], status: int, text: str) -> None:
    response = api.post(encode_write_request([([("__name__", "up")], [(NOW_MS, 1.0)])]), headers)
    assert response.status_code == status and text in response.text


def test_api_answers_400_for_bodies_that_are_not_remote_write(api: Api) -> None:
    for body in (b"", b"hello", b"\x05\x00\x01\x02\x03\x04"):
        response = api.post(body)
        assert response.status_code == 400
        assert "snappy" in response.text
    assert api.sink.batches == 0


def test_api_answers_413_over_the_limits(api: Api) -> None:
    response = api.post(b"\xff\xff\xff\x7f" + b"\x00" * 100)
    assert response.status_code == 413
    assert f"over the limit of {1 << 20} bytes (max_decoded_bytes)" in response.text
    # Over the wire limit: refused from Content-Length, before reading.
    wire_limit = remote_write.max_wire_bytes(1 << 20)
    response = api.post(b"\x00" * (wire_limit + 1))
    assert response.status_code == 413 and str(wire_limit) in response.text


def test_api_answers_503_with_retry_after_when_the_queue_is_full(api: Api) -> None:
    body = encode_write_request([([("__name__", "up")], [(NOW_MS, 1.0)])])
    assert api.post(body).status_code == 204
    api.sink.full = True
    response = api.post(encode_write_request([([("__name__", "up")], [(NOW_MS + 1, 2.0)])]))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "queue full" in response.text
    # Nothing accepted before is lost; the refused request is kept once retried.
    assert api.sink.stored("up") == [(NOW_MS, 1.0)]
    assert (api.api.accepted_samples, api.api.refused_samples) == (1, 1)
    api.sink.full = False
    assert (
        api.post(encode_write_request([([("__name__", "up")], [(NOW_MS + 1, 2.0)])])).status_code
        == 204
    )
    assert api.sink.stored("up") == [(NOW_MS, 1.0), (NOW_MS + 1, 2.0)]


def test_api_answers_503_until_the_store_is_open(api: Api) -> None:
    api.holder["writer"] = None  # type: ignore[attr-defined]
    response = api.post(encode_write_request([([("__name__", "up")], [(NOW_MS, 1.0)])]))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "not open yet" in response.text


def test_api_allows_post_only(api: Api) -> None:
    assert api.client.get(REMOTE_WRITE_PATH).status_code == 405


def test_api_writes_metadata_only_when_it_changes(api: Api) -> None:
    written: list[list[MetricMetadata]] = []
    remote = RemoteWriteAPI(lambda: api.sink, lambda: written.append, None)
    client = AppClient(Starlette(routes=remote.routes()))
    for help_text in ("One.", "One.", "Two."):
        body = encode_write_request([], [encode_metadata("m", "counter", help_text)])
        response = client.post(REMOTE_WRITE_PATH, content=body, headers=HEADERS)
        assert response.status_code == 204
    assert written == [
        [MetricMetadata("m", "counter", "One.")],
        [MetricMetadata("m", "counter", "Two.")],
    ]
