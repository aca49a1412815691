"""The engine's trickier Prometheus 3 semantics, on an in-memory store."""

from __future__ import annotations

import pytest

from tinct.metrics import STALE_NAN, SampleBuilder
from tinct.promql.engine import Engine
from tinct.promql.result import (
    BadQueryError,
    ExecutionError,
    QueryTimeoutError,
    TooManySamplesError,
)
from tinct.storage.memory_metrics import InMemoryMetricStore

MIN = 60_000


def _store(
    series: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]],
) -> InMemoryMetricStore:
    store = InMemoryMetricStore()
    b = SampleBuilder()
    for labels, points in series.items():
        for t, v in points:
            b.add(labels, t, v)
    store.write_samples(b.take())
    return store


FOO = (("__name__", "foo"), ("job", "a"))


def _values(res: object) -> list[float]:
    return [v for _, (_, v) in res.result]  # type: ignore[attr-defined]


def test_lookback_window_is_left_open() -> None:
    engine = Engine(_store({FOO: [(0, 1.0)]}), lookback_delta_ms=5 * MIN)
    assert _values(engine.instant("foo", 5 * MIN - 1)) == [1.0]
    assert engine.instant("foo", 5 * MIN).result == []


def test_range_selector_window_is_left_open() -> None:
    engine = Engine(_store({FOO: [(0, 1.0), (MIN, 2.0), (2 * MIN, 3.0)]}))
    res = engine.instant("foo[2m]", 2 * MIN)
    assert res.result_type == "matrix"
    assert res.result == [({"__name__": "foo", "job": "a"}, [(MIN, 2.0), (2 * MIN, 3.0)])]


def test_staleness_marker_ends_a_series() -> None:
    engine = Engine(_store({FOO: [(0, 1.0), (MIN, STALE_NAN), (3 * MIN, 4.0)]}))
    assert _values(engine.instant("foo", 30_000)) == [1.0]
    assert engine.instant("foo", 2 * MIN).result == []
    assert _values(engine.instant("foo", 3 * MIN)) == [4.0]
    # Markers are not samples of a range selector.
    res = engine.instant("foo[5m]", 3 * MIN)
    assert res.result[0][1] == [(0, 1.0), (3 * MIN, 4.0)]


def test_offset_and_at() -> None:
    engine = Engine(_store({FOO: [(t * MIN, float(t)) for t in range(11)]}))
    assert _values(engine.instant("foo offset 2m", 5 * MIN)) == [3.0]
    assert _values(engine.instant("foo offset -2m", 5 * MIN)) == [7.0]
    assert _values(engine.instant("foo @ 120", 9 * MIN)) == [2.0]
    assert _values(engine.instant("foo @ 240 offset 1m", 9 * MIN)) == [3.0]
    res = engine.range("foo @ end()", 0, 4 * MIN, 2 * MIN)
    assert res.result[0][1] == [(0, 4.0), (2 * MIN, 4.0), (4 * MIN, 4.0)]
    res = engine.range("foo @ start()", 2 * MIN, 4 * MIN, MIN)
    assert [v for _, v in res.result[0][1]] == [2.0, 2.0, 2.0]


def test_subquery_steps_align_to_absolute_multiples() -> None:
    engine = Engine(_store({FOO: [(t * 10_000, float(t)) for t in range(100)]}))
    # Inner steps at 0:30, 1:00, 1:30 (multiples of 30s) within (0:25, 1:55].
    res = engine.instant("foo[90s:30s]", 115_000)
    assert [t for t, _ in res.result[0][1]] == [30_000, 60_000, 90_000]
    assert [v for _, v in res.result[0][1]] == [3.0, 6.0, 9.0]


def test_one_to_one_matching_errors() -> None:
    store = _store(
        {
            (("__name__", "a"), ("job", "x"), ("i", "1")): [(0, 1.0)],
            (("__name__", "a"), ("job", "x"), ("i", "2")): [(0, 2.0)],
            (("__name__", "b"), ("job", "x")): [(0, 3.0)],
            (("__name__", "c"), ("job", "x"), ("k", "1")): [(0, 1.0)],
            (("__name__", "c"), ("job", "x"), ("k", "2")): [(0, 1.0)],
            (("__name__", "d"), ("job", "x"), ("i", "1")): [(0, 1.0)],
        }
    )
    engine = Engine(store)
    with pytest.raises(ExecutionError, match="many-to-one matching must be explicit"):
        engine.instant("a + on(job) b", 0)
    res = engine.instant("a + on(job) group_left b", 0)
    assert sorted(_values(res)) == [4.0, 5.0]
    with pytest.raises(ExecutionError, match="found duplicate series for the match group"):
        engine.instant("b + on(job) c", 0)
    with pytest.raises(ExecutionError, match="grouping labels must ensure unique matches"):
        engine.instant("{__name__=~'a|d'} * on(job) group_left b", 0)


def test_same_labelset_after_dropping_the_name_fails() -> None:
    store = _store({(("__name__", "x"),): [(0, 1.0)], (("__name__", "y"),): [(0, 2.0)]})
    with pytest.raises(ExecutionError, match="same labelset"):
        Engine(store).instant("-{__name__=~'x|y'}", 0)


def test_comparison_keeps_the_name_unless_bool() -> None:
    engine = Engine(_store({FOO: [(0, 3.0)]}))
    assert engine.instant("foo > 1", 0).result[0][0] == {"__name__": "foo", "job": "a"}
    assert engine.instant("foo > bool 5", 0).result == [({"job": "a"}, (0, 0.0))]
    assert engine.instant("1 < foo", 0).result[0][1][1] == 3.0


def test_limits_and_bad_queries() -> None:
    store = _store({FOO: [(t * MIN, 1.0) for t in range(100)]})
    with pytest.raises(TooManySamplesError):
        Engine(store, max_samples=10).instant("foo[1h]", 99 * MIN)
    ticks = iter(range(0, 1000, 100))
    with pytest.raises(QueryTimeoutError):
        Engine(store, timeout_s=150, clock=lambda: float(next(ticks))).instant("foo + foo + foo", 0)
    with pytest.raises(BadQueryError):
        Engine(store).instant("foo{", 0)
    with pytest.raises(BadQueryError):
        Engine(store).range("foo[5m]", 0, MIN, MIN)


def test_range_query_omits_absent_points() -> None:
    engine = Engine(_store({FOO: [(0, 1.0), (MIN, STALE_NAN)]}))
    res = engine.range("foo", 0, 3 * MIN, MIN)
    assert res.result == [({"__name__": "foo", "job": "a"}, [(0, 1.0)])]


@pytest.mark.parametrize("query", ["rate(c[1m])", "c", "max_over_time(c[2m])", "c offset 30s"])
def test_steps_far_apart_read_only_their_windows_and_agree_with_instant_queries(
    query: str,
) -> None:
    # Samples every 10 s; steps every 10 minutes, longer than every window, so
    # the store filters samples to the windows: the answers must not change.
    builder = SampleBuilder()
    for t in range(0, 3600, 10):
        builder.add_mapping({"__name__": "c", "job": "a"}, t * 1000 + 3_000, float(t * (t % 7)))
    store = InMemoryMetricStore()
    store.write_samples(builder.take())
    engine = Engine(store)
    ranged = engine.range(query, 600_000, 3_000_000, 600_000)
    ((_, points),) = ranged.result
    for t_ms, value in points:
        ((_, (_, alone)),) = engine.instant(query, t_ms).result
        assert value == pytest.approx(alone), (query, t_ms)
    assert len(points) == 5
