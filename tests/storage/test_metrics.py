"""Metric series and samples: the same answers from chdb, ClickHouse 18.16 and memory."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.storage.conftest import SQL_BACKENDS, StoreFactory, _factory
from tinct.metrics import (
    STALE_NAN,
    STALE_NAN_BITS,
    Matcher,
    MetricMetadata,
    SampleBuilder,
    is_stale,
)
from tinct.storage import InMemoryMetricStore, InvalidBatchError, sample_batch_writer

DAY_MS = 86_400_000


@pytest.fixture(params=[*SQL_BACKENDS, "memory"])
def metric_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryMetricStore(max_series_per_metric=5)
        return
    with _factory(request.param, request, tmp_path) as factory:
        yield factory(max_series_per_metric=5)


@pytest.fixture(params=SQL_BACKENDS)
def sql_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    with _factory(request.param, request, tmp_path) as factory:
        yield factory


def _batch(rows: list[tuple[dict[str, str], int, float]]) -> pa.Table:
    builder = SampleBuilder()
    for labels, ts, value in rows:
        builder.add_mapping(labels, ts, value)
    return builder.take()


def _points(store: Any, matchers: list[Matcher], start: int, end: int) -> dict[tuple, list]:
    series = store.series(matchers, start, end)
    by_fp = {s.fingerprint: tuple(sorted(s.labels.items())) for s in series}
    table = store.samples(list(by_fp), start, end)
    found: dict[tuple, list] = {}
    for row in table.to_pylist():
        found.setdefault(by_fp[row["fingerprint"]], []).append((row["timestamp_ms"], row["value"]))
    return found


def _bits(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def test_samples_round_trip_with_special_values(metric_store: Any) -> None:
    job = {"__name__": "node_load1", "job": 'we"ird\\job', "instance": "héllo:9100\n"}
    metric_store.write_samples(
        _batch(
            [
                (job, 1_000, 0.5),
                (job, 16_000, math.inf),
                (job, 31_000, -math.inf),
                (job, 46_000, float("nan")),
                (job, 61_000, STALE_NAN),
            ]
        )
    )
    found = _points(metric_store, [Matcher("__name__", "=", "node_load1")], 0, 100_000)
    assert list(found) == [tuple(sorted(job.items()))]
    points = found[tuple(sorted(job.items()))]
    assert [t for t, _ in points] == [1_000, 16_000, 31_000, 46_000, 61_000]
    assert points[0][1] == 0.5 and points[1][1] == math.inf and points[2][1] == -math.inf
    # An ordinary NaN stays an ordinary NaN, the staleness marker keeps its bits.
    assert math.isnan(points[3][1]) and not is_stale(points[3][1])
    assert _bits(points[4][1]) == STALE_NAN_BITS


def test_window_bounds_are_inclusive_and_old_data_is_kept(metric_store: Any) -> None:
    # Near the epoch, as PromQL test data is: retention is off, nothing expires.
    metric_store.write_samples(
        _batch([({"__name__": "x"}, t, float(t)) for t in (0, 5_000, 10_000, 15_000)])
    )
    got = _points(metric_store, [Matcher("__name__", "=", "x")], 5_000, 10_000)
    assert list(got.values()) == [[(5_000, 5_000.0), (10_000, 10_000.0)]]


def test_matchers_follow_promql(metric_store: Any) -> None:
    rows = [
        ({"__name__": "http_requests_total", "job": "api", "code": "200"}, 1_000, 1.0),
        ({"__name__": "http_requests_total", "job": "api", "code": "500"}, 1_000, 2.0),
        ({"__name__": "http_requests_total", "job": "web"}, 1_000, 3.0),
        ({"__name__": "other", "job": "api"}, 1_000, 4.0),
    ]
    metric_store.write_samples(_batch(rows))

    def names(*matchers: Matcher) -> list[str]:
        return [
            f"{s.name}:{s.labels.get('job')}:{s.labels.get('code', '-')}"
            for s in metric_store.series(list(matchers), 0, 10_000)
        ]

    name = Matcher("__name__", "=", "http_requests_total")
    assert names(name, Matcher("code", "=~", "2..")) == ["http_requests_total:api:200"]
    # An absent label matches "" (PromQL): code="" selects the series without code.
    assert names(name, Matcher("code", "=", "")) == ["http_requests_total:web:-"]
    assert names(name, Matcher("code", "!=", "")) == [
        "http_requests_total:api:200",
        "http_requests_total:api:500",
    ]
    # Regexes are anchored: "5" does not match "500".
    assert names(name, Matcher("code", "=~", "5")) == []
    assert names(name, Matcher("code", "!~", "5.*")) == [
        "http_requests_total:api:200",
        "http_requests_total:web:-",
    ]
    assert names(Matcher("__name__", "=~", "http_.*|other"), Matcher("job", "=", "api")) == [
        "http_requests_total:api:200",
        "http_requests_total:api:500",
        "other:api:-",
    ]
    assert metric_store.label_names([Matcher("job", "=", "web")], 0, 10_000) == [
        "__name__",
        "job",
    ]
    assert metric_store.label_values("code", [], 0, 10_000) == ["200", "500"]
    assert metric_store.label_values("__name__", [], 0, 10_000) == [
        "http_requests_total",
        "other",
    ]
    assert len(metric_store.series([], 0, 10_000, limit=2)) == 2


def test_series_are_found_by_day(metric_store: Any) -> None:
    metric_store.write_samples(_batch([({"__name__": "d", "k": "v"}, 3 * DAY_MS + 5, 1.0)]))
    assert metric_store.series([Matcher("k", "=", "v")], 0, DAY_MS) == []
    assert len(metric_store.series([Matcher("k", "=", "v")], 3 * DAY_MS, 3 * DAY_MS + 1)) == 1


def test_resent_samples_are_read_once(metric_store: Any) -> None:
    rows = [({"__name__": "dup"}, t, 1.0) for t in (1_000, 2_000)]
    metric_store.write_samples(_batch(rows))
    metric_store.write_samples(_batch(rows))
    got = _points(metric_store, [Matcher("__name__", "=", "dup")], 0, 10_000)
    assert list(got.values()) == [[(1_000, 1.0), (2_000, 1.0)]]


def test_series_limit_drops_and_counts(metric_store: Any) -> None:
    rows = [({"__name__": "boom", "id": str(i)}, 1_000, 1.0) for i in range(8)]
    rows.append(({"__name__": "fine"}, 1_000, 1.0))
    metric_store.write_samples(_batch(rows))
    # Same series again: still refused, counted once each.
    metric_store.write_samples(_batch(rows))
    assert len(metric_store.series([Matcher("__name__", "=", "boom")], 0, 10_000)) == 5
    assert len(metric_store.series([Matcher("__name__", "=", "fine")], 0, 10_000)) == 1
    assert metric_store.dropped_series == {"boom": 3}


def test_series_limit_survives_reopen(sql_stores: StoreFactory) -> None:
    import time

    now = time.time_ns() // 1_000_000
    store = sql_stores(max_series_per_metric=3)
    store.write_samples(_batch([({"__name__": "m", "i": str(i)}, now, 1.0) for i in range(3)]))
    store.close()
    store = sql_stores(max_series_per_metric=3)
    store.write_samples(_batch([({"__name__": "m", "i": "new"}, now, 1.0)]))
    assert store.dropped_series == {"m": 1}
    # A known series is not new: writing it again is not refused.
    store.write_samples(_batch([({"__name__": "m", "i": "0"}, now + 1, 2.0)]))
    assert store.dropped_series == {"m": 1}


def test_many_days_in_one_batch(metric_store: Any) -> None:
    # More days than ClickHouse lets one insert create partitions for.
    rows = [({"__name__": "backfill"}, day * DAY_MS, float(day)) for day in range(150)]
    metric_store.write_samples(_batch(rows))
    got = _points(metric_store, [Matcher("__name__", "=", "backfill")], 0, 150 * DAY_MS)
    assert [v for _, v in next(iter(got.values()))] == [float(d) for d in range(150)]


def test_metadata_latest_wins(metric_store: Any) -> None:
    metric_store.write_metadata([MetricMetadata("up", "gauge", "old help")])
    metric_store.write_metadata(
        [MetricMetadata("up", "gauge", "new help"), MetricMetadata("a_total", "counter", "a")]
    )
    assert [m.metric for m in metric_store.metadata()] == ["a_total", "up"]
    # Same-millisecond writes may tie on the SQL stores; the help is one of them.
    assert metric_store.metadata("up")[0].help in ("old help", "new help")


def test_bad_batch_is_refused(metric_store: Any) -> None:
    good = _batch([({"__name__": "g"}, 1, 1.0)])
    with pytest.raises(InvalidBatchError, match="lacks columns"):
        metric_store.write_samples(good.drop(["value"]))
    with pytest.raises(InvalidBatchError, match="differ in length"):
        metric_store.write_samples(
            good.set_column(3, "label_values", pa.array([["x"]], pa.list_(pa.string())))
        )


def test_retention_drops_old_sample_partitions(sql_stores: StoreFactory) -> None:
    import datetime as dt
    import time

    # Real days: where the server has TTL it expires rows by the real date too.
    today = time.time_ns() // 1_000_000 // DAY_MS
    store = sql_stores(retention_days=2)
    store.write_samples(
        _batch([({"__name__": "r"}, (today - back) * DAY_MS, 1.0) for back in (10, 3, 2, 1, 0)])
    )
    dropped = store.apply_retention()
    old = (dt.date(1970, 1, 1) + dt.timedelta(days=today - 10)).strftime("%Y%m%d")
    assert ("tinct_samples", old) in dropped
    assert ("tinct_series", old) in dropped
    got = _points(store, [Matcher("__name__", "=", "r")], 0, (today + 1) * DAY_MS)
    assert [today - t // DAY_MS for t, _ in next(iter(got.values()))] == [2, 1, 0]


def test_sample_batch_writer_batches_into_the_store() -> None:
    store = InMemoryMetricStore()
    writer = sample_batch_writer(store, max_delay=0.01)
    writer.submit(_batch([({"__name__": "w"}, 1, 1.0)]))
    writer.submit(_batch([({"__name__": "w"}, 2, 2.0)]))
    assert writer.close()
    got = _points(store, [Matcher("__name__", "=", "w")], 0, 10)
    assert list(got.values()) == [[(1, 1.0), (2, 2.0)]]


def test_samples_filtered_to_step_windows(metric_store: Any) -> None:
    # One sample a second; windows of 3 s ending every 10 s from t=20 s.
    rows = [({"__name__": "w"}, t * 1000, float(t)) for t in range(60)]
    metric_store.write_samples(_batch(rows))
    (series,) = metric_store.series([Matcher("__name__", "=", "w")], 0, 60_000)
    got = metric_store.samples([series.fingerprint], 0, 50_000, windows=(20_000, 10_000, 3_000))
    seconds = [t // 1000 for t in got.column("timestamp_ms").to_pylist()]
    # Left-open windows (t-3, t]: 8..10, 18..20, 28..30, 38..40, 48..50, and 0
    # (the ends are first_end + k*step in both directions; callers bound start).
    assert seconds == [0, 8, 9, 10, 18, 19, 20, 28, 29, 30, 38, 39, 40, 48, 49, 50]
    everything = metric_store.samples([series.fingerprint], 0, 50_000)
    assert everything.num_rows == 51
