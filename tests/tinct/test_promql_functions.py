"""PromQL functions against cases from Prometheus's promql/testdata/functions.test
and histograms.test, with the inputs rebuilt by hand as Windows and Vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinct.metrics import Labels, Matcher
from tinct.promql.functions import FUNCTIONS, CallInfo, call_function, returns_ordered
from tinct.promql.functions_histogram import bucket_quantile, go_float, openmetrics_float
from tinct.promql.functions_labels import natural_less
from tinct.promql.result import ExecutionError
from tinct.promql.values import EvalContext, Scalar, String, Value, Vector, Window

M = 60_000


def L(**labels: str) -> Labels:
    return tuple(sorted(labels.items()))


def expand(text: str) -> list[float | None]:
    """The promql test "load" notation: ``0+10x3`` is 0 10 20 30; ``_`` is missing."""
    out: list[float | None] = []
    for token in text.split():
        if token == "_":
            out.append(None)
        elif "x" in token:
            head, times = token.split("x")
            sign = "+" if "+" in head[1:] else "-"
            start, _, step = head[1:].partition(sign)
            start = head[0] + start
            inc = float(step) * (1 if sign == "+" else -1)
            out += [float(start) + i * inc for i in range(int(times) + 1)]
        else:
            out.append(float(token))
    return out


def window(series: dict[Labels, str], interval_ms: int, ends: list[int], range_ms: int) -> Window:
    labels, times, values = [], [], []
    for lb, text in series.items():
        pts = [(i * interval_ms, v) for i, v in enumerate(expand(text)) if v is not None]
        labels.append(lb)
        times.append(np.array([t for t, _ in pts], dtype=np.int64))
        values.append(np.array([v for _, v in pts]))
    e = np.array(ends, dtype=np.int64)
    lo = np.array([np.searchsorted(t, e - range_ms, side="right") for t in times])
    hi = np.array([np.searchsorted(t, e, side="right") for t in times])
    return Window(labels, times, values, lo.reshape(len(labels), len(e)), hi, e, range_ms)


def vector(rows: dict[Labels, list[float | None]]) -> Vector:
    labels = list(rows)
    vals = [[math.nan if v is None else v for v in r] for r in rows.values()]
    pres = [[v is not None for v in r] for r in rows.values()]
    steps = len(next(iter(rows.values()))) if rows else 1
    return Vector(labels, np.array(vals).reshape(-1, steps), np.array(pres).reshape(-1, steps))


def scalar(*values: float) -> Scalar:
    return Scalar(np.array(values, dtype=np.float64))


def ctx_at(*ms: int) -> EvalContext:
    return EvalContext(steps=np.array(ms, dtype=np.int64))


def run(name: str, args: list[Value], at: int | list[int] = 0, info: CallInfo | None = None):
    steps = at if isinstance(at, list) else [at]
    ctx = ctx_at(*steps)
    return call_function(name, ctx, args, info), ctx


def as_dict(vec: Value, step: int = 0) -> dict[Labels, float]:
    assert isinstance(vec, Vector)
    return {
        lb: float(vec.values[i, step]) for i, lb in enumerate(vec.labels) if vec.present[i, step]
    }


def approx(got: dict[Labels, float], want: dict[Labels, float]) -> None:
    assert set(got) == set(want), (got, want)
    for k, v in want.items():
        if math.isnan(v):
            assert math.isnan(got[k]), (k, got[k])
        else:
            assert got[k] == pytest.approx(v, rel=1e-12, abs=1e-12), (k, got[k], v)


# --- resets / changes -------------------------------------------------------

HTTP = {
    L(__name__="http_requests", path="/foo"): "1 2 3 0 1 0 0 1 2 0",
    L(__name__="http_requests", path="/bar"): "1 2 3 4 5 1 2 3 4 5",
    L(__name__="http_requests", path="/biz"): "0 0 0 0 0 1 1 1 1 1",
}


@pytest.mark.parametrize(
    ("range_m", "foo", "bar", "biz"),
    [(10, 0, 0, 0), (20, 1, 0, 0), (30, 1, 0, 0), (32, 2, 1, 0), (50, 3, 1, 0)],
)
def test_resets(range_m: int, foo: float, bar: float, biz: float) -> None:
    out, _ = run("resets", [window(HTTP, 5 * M, [50 * M], range_m * M)])
    approx(as_dict(out), {L(path="/foo"): foo, L(path="/bar"): bar, L(path="/biz"): biz})


def test_resets_with_no_sample_in_window_is_empty() -> None:
    out, _ = run("resets", [window(HTTP, 5 * M, [50 * M], 5 * M)])
    assert as_dict(out) == {}


@pytest.mark.parametrize(
    ("range_m", "foo", "bar", "biz"), [(6, 0, 0, 0), (20, 2, 2, 0), (30, 3, 4, 0), (50, 7, 8, 1)]
)
def test_changes(range_m: int, foo: float, bar: float, biz: float) -> None:
    out, _ = run("changes", [window(HTTP, 5 * M, [50 * M], range_m * M)])
    approx(as_dict(out), {L(path="/foo"): foo, L(path="/bar"): bar, L(path="/biz"): biz})


def test_changes_nan_to_nan_is_not_a_change() -> None:
    out, _ = run("changes", [window({L(): "1 NaN NaN 1"}, M, [3 * M], 10 * M)])
    approx(as_dict(out), {L(): 2})


# --- rate / increase / delta --------------------------------------------------

COUNTERS = {
    L(__name__="http_requests_total", path="/foo"): "0+10x10",
    L(__name__="http_requests_total", path="/bar"): "0+18x5 0+18x5",
    L(__name__="http_requests_total", path="/dings"): "10+10x10",
    L(__name__="http_requests_total", path="/bumms"): "1+10x10",
}


def test_increase_extrapolation_and_zero_cutoff() -> None:
    out, ctx = run("increase", [window(COUNTERS, 5 * M, [50 * M], 50 * M)])
    approx(
        as_dict(out),
        {L(path="/foo"): 100, L(path="/bar"): 160, L(path="/dings"): 100, L(path="/bumms"): 100},
    )
    assert ctx.infos == []
    out, _ = run("increase", [window(COUNTERS, 5 * M, [50 * M], 100 * M)])
    approx(
        as_dict(out),
        {L(path="/foo"): 100, L(path="/bar"): 162, L(path="/dings"): 105, L(path="/bumms"): 101},
    )


def test_increase_counter_reset() -> None:
    out, _ = run("increase", [window({L(path="/foo"): "0 1 2 3 2 3 4"}, 5 * M, [30 * M], 30 * M)])
    approx(as_dict(out), {L(path="/foo"): 7})


def test_rate_counter_resets() -> None:
    w = window({L(__name__="c_total"): "0+27x4 0+27x5"}, 5 * M, [50 * M], 50 * M)
    approx(as_dict(run("rate", [w])[0]), {L(): 0.08})
    end = {L(__name__="e_total"): "0+10x9 0 10"}
    assert as_dict(run("rate", [window(end, 5 * M, [50 * M], 5 * M)])[0]) == {}
    approx(as_dict(run("rate", [window(end, 5 * M, [50 * M], 6 * M)])[0]), {L(): 0})


def test_rate_with_offset_uses_the_shifted_window() -> None:
    series = {L(x="a"): "0+10x10", L(x="b"): "0+20x10"}
    out, _ = run("rate", [window(series, 5 * M, [45 * M], 10 * M)], at=50 * M)
    approx(as_dict(out), {L(x="a"): 0.03333333333333333, L(x="b"): 0.06666666666666667})


def test_rate_zero_cutoff() -> None:
    series = {L(start=f"{i}m"): f"{60 * i}+240x10" for i in range(6)}
    out, _ = run("rate", [window(series, 4 * M, [10 * M], 20 * M)], at=10 * M)
    want = [0.5, 0.55, 0.6, 0.6, 0.6, 0.6]
    approx(as_dict(out), {L(start=f"{i}m"): w for i, w in enumerate(want)})
    out, _ = run("rate", [window(series, 4 * M, [50 * M], 20 * M)], at=50 * M)
    approx(as_dict(out), {L(start=f"{i}m"): 0.6 for i in range(6)})


def test_rate_on_non_counter_name_adds_info() -> None:
    _, ctx = run("rate", [window({L(__name__="gauge"): "0 1 2"}, M, [2 * M], 5 * M)])
    assert ctx.infos == [
        "PromQL info: metric might not be a counter, name does not end in "
        '_total/_sum/_count/_bucket: "gauge"'
    ]


def test_delta() -> None:
    series = {L(path="/foo"): "0 50 100 150 200", L(path="/bar"): "200 150 100 50 0"}
    out, _ = run("delta", [window(series, 5 * M, [20 * M], 20 * M)], at=20 * M)
    approx(as_dict(out), {L(path="/foo"): 200, L(path="/bar"): -200})


def test_irate_and_idelta() -> None:
    series = {L(path="/foo"): "0+10x10", L(path="/bar"): "0+10x5 0+10x5"}
    out, _ = run("irate", [window(series, 5 * M, [50 * M], 50 * M)])
    approx(as_dict(out), {L(path="/foo"): 1 / 30, L(path="/bar"): 1 / 30})
    out, _ = run("irate", [window(series, 5 * M, [30 * M], 50 * M)])
    approx(as_dict(out), {L(path="/foo"): 1 / 30, L(path="/bar"): 0})
    steps = [0, 5 * M, 10 * M, 15 * M, 20 * M]
    nan = window({L(): "1 NaN NaN 5 11"}, 5 * M, steps, 15 * M + 1000)
    out, _ = run("irate", [nan], at=steps)
    assert isinstance(out, Vector)
    assert out.present.tolist() == [[False, True, True, True, True]]
    assert np.isnan(out.values[0, 1:4]).all() and out.values[0, 4] == pytest.approx(0.02)
    out, _ = run("idelta", [nan], at=steps)
    assert isinstance(out, Vector) and out.values[0, 4] == 6
    gauges = {L(path="/foo"): "0 50 100 150", L(path="/bar"): "0 50 100 50"}
    out, _ = run("idelta", [window(gauges, 5 * M, [20 * M], 20 * M)])
    approx(as_dict(out), {L(path="/foo"): 50, L(path="/bar"): -50})


# --- deriv / predict_linear -----------------------------------------------------

RESET_MIDDLE = {L(__name__="testcounter_reset_middle_total"): "0+10x4 0+10x5"}


def test_deriv() -> None:
    series = {L(job="app-server"): "0+80x10"}
    out, _ = run("deriv", [window(series, 5 * M, [50 * M], 50 * M)], at=50 * M)
    approx(as_dict(out), {L(job="app-server"): 0.26666666666666666})
    out, _ = run("deriv", [window(RESET_MIDDLE, 5 * M, [50 * M], 100 * M)], at=50 * M)
    approx(as_dict(out), {L(): 0.010606060606060607})
    inf = {L(job="x"): "-Inf 0+80x10 Inf"}
    out, _ = run("deriv", [window(inf, 5 * M, [100 * M], 100 * M)], at=100 * M)
    approx(as_dict(out), {L(job="x"): math.nan})


@pytest.mark.parametrize(
    ("at", "end", "range_m", "want"),
    [
        (50, 50, 50, 70),
        (50, 50, 55, 76.81818181818181),  # [55m] @ 3000
        (10, 50, 55, 51.36363636363637),  # intercept at the evaluation time
        (70, 50, 55, 89.54545454545455),
    ],
)
def test_predict_linear(at: int, end: int, range_m: int, want: float) -> None:
    w = window(RESET_MIDDLE, 5 * M, [end * M], range_m * M)
    out, _ = run("predict_linear", [w, scalar(3600)], at=at * M)
    approx(as_dict(out), {L(): want})


def test_double_exponential_smoothing() -> None:
    series = {
        L(i="0"): "0+10x1000 100+30x1000",
        L(i="1"): "0+20x1000 200+30x1000",
        L(i="2"): "0+30x1000 300+80x1000",
        L(i="3"): "0+40x2000",
    }
    w = window(series, 10_000, [8_000_000], M)
    out, _ = run("double_exponential_smoothing", [w, scalar(0.01), scalar(0.1)], at=8_000_000)
    approx(as_dict(out), {L(i="0"): 8000, L(i="1"): 16000, L(i="2"): 24000, L(i="3"): 32000})
    with pytest.raises(ExecutionError, match="invalid smoothing factor"):
        run("double_exponential_smoothing", [w, scalar(1.5), scalar(0.1)], at=8_000_000)


# --- *_over_time ---------------------------------------------------------------


AVG = {
    "1 2 3 4 5": 3,
    "1 2 3 4 Inf": math.inf,
    "1 2 3 Inf -Inf": math.nan,
    "Inf 0 Inf": math.inf,
    "Inf Inf Inf -Inf": math.nan,
    "-Inf 0 -Inf": -math.inf,
    "9.988465674311579e+307 9.988465674311579e+307": 9.988465674311579e307,
    "-9.988465674311579e+307 9.988465674311579e+307": 0,
    "1 2 3 NaN NaN": math.nan,
    "1 1e100 1 -1e100": 0.5,
    "1e10 1e-6 1e-6 1e-6 1e-6 1e-6": 1.6666666666666675e09,
    "1.78264E+50 0.76342771 1.9592258 2.258E+220 7.69805412 458.90154": 3.76333333333333e219,
    "-1.78264E+215 0.76342771 1.9592258 2.258E+220 7.69805412 1.78264E+215 -458.90154": (
        3.225714285714286e219
    ),
}


@pytest.mark.parametrize(("text", "want"), list(AVG.items()))
def test_avg_over_time(text: str, want: float) -> None:
    out, _ = run("avg_over_time", [window({L(__name__="m"): text}, 5000, [55_000], M)], at=55_000)
    approx(as_dict(out), {L(): want})


def test_sum_over_time_keeps_small_values_next_to_huge_ones() -> None:
    out, _ = run("sum_over_time", [window({L(): "1 1e100 1 -1e100"}, 10_000, [M], 2 * M)], at=M)
    approx(as_dict(out), {L(): 2})


def test_over_time_family_at_several_steps() -> None:
    w = window({L(__name__="m", a="b"): "1 5 2 NaN 4"}, 10_000, [20_000, 40_000], 30_000)
    expect = {
        "count_over_time": [3, 3],
        "max_over_time": [5, 4],
        "min_over_time": [1, 2],
        "last_over_time": [2, 4],
        "first_over_time": [1, 2],
        "ts_of_max_over_time": [10, 40],
        "ts_of_last_over_time": [20, 40],
        "present_over_time": [1, 1],
    }
    for name, want in expect.items():
        out, _ = run(name, [w], at=[20_000, 40_000])
        assert isinstance(out, Vector)
        keeps = name in ("last_over_time", "first_over_time")
        assert out.labels == [L(__name__="m", a="b") if keeps else L(a="b")], name
        assert out.values[0].tolist() == want, name
    out, _ = run("stdvar_over_time", [window({L(): "2 4 4 4 5 5 7 9"}, 1000, [8000], 10_000)])
    approx(as_dict(out), {L(): 4})
    out, _ = run("stddev_over_time", [window({L(): "2 4 4 4 5 5 7 9"}, 1000, [8000], 10_000)])
    approx(as_dict(out), {L(): 2})


def test_quantile_and_mad_over_time() -> None:
    w = window({L(): "1 2 3 4 10"}, 1000, [5000], 10_000)
    approx(as_dict(run("quantile_over_time", [scalar(0.5), w])[0]), {L(): 3})
    approx(as_dict(run("quantile_over_time", [scalar(0.75), w])[0]), {L(): 4})
    approx(as_dict(run("mad_over_time", [w])[0]), {L(): 1})
    out, ctx = run("quantile_over_time", [scalar(2), w])
    approx(as_dict(out), {L(): math.inf})
    assert ctx.warnings == ["PromQL warning: quantile value should be between 0 and 1, got 2"]


# --- absent --------------------------------------------------------------------


def test_absent_takes_labels_from_equality_matchers() -> None:
    info = CallInfo(
        matchers=[
            Matcher("__name__", "=", "nonexistent"),
            Matcher("job", "=", "a"),
            Matcher("job", "=", "b"),
            Matcher("instance", "=", "x"),
            Matcher("env", "=~", "p.*"),
        ]
    )
    out, _ = run("absent", [Vector.empty(1)], info=info)
    assert as_dict(out) == {L(instance="x"): 1.0}
    present = vector({L(job="a"): [1.0]})
    assert as_dict(run("absent", [present], info=info)[0]) == {}


def test_absent_over_time_per_step() -> None:
    w = window({L(a="b"): "1 _ _ _ 5"}, 10_000, [0, 20_000, 40_000], 15_000)
    out, _ = run("absent_over_time", [w], at=[0, 20_000, 40_000])
    assert isinstance(out, Vector) and out.present.tolist() == [[False, True, False]]


# --- labels ----------------------------------------------------------------------

TESTMETRIC = vector(
    {
        L(__name__="testmetric", src="source-value-10", dst="original-destination-value"): [0.0],
        L(__name__="testmetric", src="source-value-20", dst="original-destination-value"): [1.0],
    }
)


def _replace(*args: str) -> dict[Labels, float]:
    out, _ = run("label_replace", [TESTMETRIC, *(String(a) for a in args)])
    return as_dict(out)


def test_label_replace() -> None:
    got = _replace("dst", "destination-value-$1", "src", "source-value-(.*)")
    assert got == {
        L(__name__="testmetric", src="source-value-10", dst="destination-value-10"): 0,
        L(__name__="testmetric", src="source-value-20", dst="destination-value-20"): 1,
    }
    unchanged = as_dict(TESTMETRIC)
    assert _replace("dst", "destination-value-$1", "src", "value-(.*)") == unchanged
    assert _replace("dst", "value-$1", "nonexistent-src", "source-value-(.*)") == unchanged
    emptied = _replace("dst", "value-$1", "nonexistent-src", "(.*)")
    assert {dict(k)["dst"] for k in emptied} == {"value-"}
    dropped = _replace("dst", "", "dst", ".*")
    assert all("dst" not in dict(k) for k in dropped)
    with pytest.raises(ExecutionError, match="invalid regular expression"):
        _replace("dst", "value-$1", "src", "(.*")
    with pytest.raises(ExecutionError, match="same labelset"):
        _replace("src", "", "", "")


def test_label_join() -> None:
    vec = vector({L(__name__="t", src="a", src1="b", src2="c", dst="orig"): [0.0]})
    out, _ = run("label_join", [vec, *(String(s) for s in ("dst", "-", "src", "src3", "src1"))])
    assert as_dict(out) == {L(__name__="t", src="a", src1="b", src2="c", dst="a--b"): 0}
    out, _ = run("label_join", [vec, String("dst"), String(", ")])
    assert as_dict(out) == {L(__name__="t", src="a", src1="b", src2="c"): 0}
    dup = vector({L(label="a", this="a"): [1.0], L(label="b", this="a"): [1.0]})
    with pytest.raises(
        ExecutionError, match="vector cannot contain metrics with the same labelset"
    ):
        run("label_join", [dup, String("label"), String(""), String("this")])


def test_label_join_merges_series_that_do_not_overlap() -> None:
    vec = vector({L(a="1", b="x"): [1.0, None], L(a="2", b="x"): [None, 2.0]})
    out, _ = run("label_join", [vec, String("a"), String(""), String("b")], at=[0, 1000])
    assert isinstance(out, Vector)
    assert out.labels == [L(a="x", b="x")] and out.values.tolist() == [[1.0, 2.0]]


def test_sort_and_sort_by_label() -> None:
    vec = vector({L(x="a"): [3.0], L(x="b"): [math.nan], L(x="c"): [1.0], L(x="d"): [2.0]})
    assert [dict(lb)["x"] for lb in run("sort", [vec])[0].labels] == ["c", "d", "a", "b"]
    assert [dict(lb)["x"] for lb in run("sort_desc", [vec])[0].labels] == ["a", "d", "c", "b"]
    names = vector({L(i=v): [0.0] for v in ("10", "9", "1a", "x")})
    out, _ = run("sort_by_label", [names, String("i")])
    assert [dict(lb).get("i", "") for lb in out.labels] == ["1a", "9", "10", "x"]
    out, _ = run("sort_by_label_desc", [names, String("i")])
    assert [dict(lb).get("i", "") for lb in out.labels] == ["x", "10", "9", "1a"]
    assert natural_less("a2", "a10") and not natural_less("a10", "a2")
    assert returns_ordered("sort") and returns_ordered("sort_by_label")
    assert not returns_ordered("rate")


def test_info_adds_data_labels_of_target_info() -> None:
    base = vector(
        {
            L(__name__="metric", instance="a", job="1", label="value"): [0.0],
            L(__name__="other", instance="a", job="2"): [1.0],
        }
    )
    infos = vector({L(__name__="target_info", instance="a", job="1", data="info"): [1.0]})
    out, _ = run("info", [base], info=CallInfo(info_series=infos))
    assert as_dict(out) == {
        L(__name__="metric", instance="a", job="1", label="value", data="info"): 0.0,
        L(__name__="other", instance="a", job="2"): 1.0,
    }
    strict = CallInfo(info_series=infos, info_matchers=[Matcher("data", "=~", ".+")])
    out, _ = run("info", [base], info=strict)
    assert list(as_dict(out)) == [
        L(__name__="metric", instance="a", job="1", label="value", data="info")
    ]


# --- math, clamp, round, dates --------------------------------------------------


def test_clamp() -> None:
    vec = vector({L(__name__="c", src=s): [v] for s, v in (("a", -50.0), ("b", 0.0), ("c", 100.0))})
    approx(
        as_dict(run("clamp_max", [vec, scalar(75)])[0]),
        {L(src="a"): -50, L(src="b"): 0, L(src="c"): 75},
    )
    approx(
        as_dict(run("clamp_min", [vec, scalar(-25)])[0]),
        {L(src="a"): -25, L(src="b"): 0, L(src="c"): 100},
    )
    approx(
        as_dict(run("clamp", [vec, scalar(-25), scalar(75)])[0]),
        {L(src="a"): -25, L(src="b"): 0, L(src="c"): 75},
    )
    nan = as_dict(run("clamp", [vec, scalar(0), scalar(math.nan)])[0])
    assert len(nan) == 3 and all(math.isnan(v) for v in nan.values())
    assert as_dict(run("clamp", [vec, scalar(5), scalar(-5)])[0]) == {}


def test_round_to_nearest_and_math() -> None:
    vec = vector({L(a="1"): [1.5], L(a="2"): [-1.5], L(a="3"): [2.25]})
    approx(as_dict(run("round", [vec])[0]), {L(a="1"): 2, L(a="2"): -1, L(a="3"): 2})
    approx(
        as_dict(run("round", [vec, scalar(0.5)])[0]), {L(a="1"): 1.5, L(a="2"): -1.5, L(a="3"): 2.5}
    )
    approx(as_dict(run("round", [vec, scalar(10)])[0]), {L(a="1"): 0, L(a="2"): 0, L(a="3"): 0})
    neg = vector({L(): [-1.0]})
    approx(as_dict(run("ln", [neg])[0]), {L(): math.nan})
    approx(as_dict(run("sgn", [vector({L(): [-3.0]})])[0]), {L(): -1})
    approx(as_dict(run("deg", [vector({L(): [math.pi]})])[0]), {L(): 180})
    assert run("pi", [])[0].values.tolist() == [math.pi]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "seconds", "want"),
    [
        ("year", 1136239445, 2006),
        ("month", 1136239445, 1),
        ("day_of_month", 1136239445, 2),
        ("day_of_year", 1136239445, 2),
        ("day_of_week", 1136239445, 1),
        ("hour", 1136239445, 22),
        ("minute", 1136239445, 4),
        ("year", 1230767999, 2008),
        ("year", 1230768000, 2009),
        ("day_of_month", 1456790399, 29),
        ("month", 1456790400, 3),
        ("day_of_year", 1483191420, 366),
        ("day_of_year", 1672493820, 365),
        ("days_in_month", 1454284800, 29),
        ("days_in_month", 1485907200, 28),
    ],
)
def test_date_functions(name: str, seconds: int, want: float) -> None:
    out, _ = run(name, [vector({L(__name__="v"): [float(seconds)]})])
    assert as_dict(out) == {L(): want}


def test_date_functions_default_to_the_step_time() -> None:
    assert as_dict(run("year", [])[0]) == {L(): 1970}
    assert as_dict(run("day_of_week", [])[0]) == {L(): 4}  # a Thursday


def test_time_scalar_vector_and_query_functions() -> None:
    ctx = ctx_at(0, 5000, 10_000)
    assert call_function("time", ctx, []).values.tolist() == [0, 5, 10]  # type: ignore[union-attr]
    assert call_function("step", ctx, []).values.tolist() == [5, 5, 5]  # type: ignore[union-attr]
    assert call_function("range", ctx, []).values.tolist() == [10, 10, 10]  # type: ignore[union-attr]
    assert call_function("step", ctx_at(0), []).values.tolist() == [0]  # type: ignore[union-attr]
    two = vector({L(a="1"): [1.0], L(a="2"): [2.0]})
    assert np.isnan(call_function("scalar", ctx_at(0), [two]).values[0])  # type: ignore[union-attr]
    one = vector({L(a="1"): [7.0]})
    assert call_function("scalar", ctx_at(0), [one]).values.tolist() == [7.0]  # type: ignore[union-attr]
    assert as_dict(call_function("vector", ctx_at(0), [scalar(3)])) == {L(): 3}
    min_of = call_function("min_of", ctx_at(0), [scalar(math.nan), scalar(3)])
    assert np.isnan(min_of.values[0])  # type: ignore[union-attr]


def test_timestamp_uses_sample_times_when_given() -> None:
    vec = vector({L(__name__="metric"): [1.0]})
    info = CallInfo(timestamps=np.array([[10_000]], dtype=np.int64))
    assert as_dict(run("timestamp", [vec], at=15_000, info=info)[0]) == {L(): 10}
    assert as_dict(run("timestamp", [vec], at=15_000)[0]) == {L(): 15}


# --- histogram_quantile / histogram_fraction -----------------------------------


def _buckets(name: str, rows: dict[str, float], **labels: str) -> dict[Labels, list[float | None]]:
    return {L(__name__=name, le=le, **labels): [v] for le, v in rows.items()}


def test_histogram_quantile_two_histograms() -> None:
    # histograms.test's testhistogram at 50m (ten increments of each bucket).
    rows = {
        **_buckets("h_bucket", {"0.1": 50, ".2": 70, "1e0": 110, "+Inf": 120}, start="positive"),
        **_buckets("h_bucket", {"-.2": 10, "-0.1": 20, "0.3": 20, "+Inf": 30}, start="negative"),
    }
    vec = vector(rows)
    want = {
        0: (0, -0.2),
        0.2: (0.048, -0.2),
        0.5: (0.15, -0.15),
        0.8: (0.72, 0.3),
        1: (1, 0.3),
    }
    for q, (pos, neg) in want.items():
        out, _ = run("histogram_quantile", [scalar(q), vec])
        approx(as_dict(out), {L(start="positive"): pos, L(start="negative"): neg})
    out, ctx = run("histogram_quantile", [scalar(-0.1), vec])
    assert as_dict(out) == {L(start="positive"): -math.inf, L(start="negative"): -math.inf}
    assert ctx.warnings


def test_histogram_quantile_edge_cases() -> None:
    assert math.isnan(bucket_quantile(0.5, [(1.0, 10.0), (2.0, 20.0)])[0])  # no +Inf
    assert math.isnan(bucket_quantile(0.5, [(math.inf, 10.0)])[0])  # one bucket
    assert math.isnan(bucket_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)])[0])  # empty
    assert math.isnan(bucket_quantile(math.nan, [(1.0, 1.0), (math.inf, 2.0)])[0])
    assert bucket_quantile(2, [(1.0, 1.0), (math.inf, 2.0)])[0] == math.inf
    # The rank in the +Inf bucket: the second-highest bound.
    assert bucket_quantile(0.99, [(1.0, 1.0), (2.0, 2.0), (math.inf, 10.0)])[0] == 2.0
    # Non-monotonic counts are flattened (and reported): 10 10 20.
    value, forced = bucket_quantile(0.5, [(1.0, 10.0), (2.0, 5.0), (math.inf, 20.0)])
    assert forced and value == 1.0
    value, forced = bucket_quantile(0.75, [(1.0, 10.0), (2.0, 5.0), (3.0, 20.0), (math.inf, 20.0)])
    assert forced and value == 2.5
    # Differences below 1e-12 relative are precision noise, silently evened out.
    value, forced = bucket_quantile(
        0.5, [(1.0, 10.0), (2.0, 10.0 - 1e-15), (3.0, 20.0), (math.inf, 20.0)]
    )
    assert not forced and value == 1.0
    # Duplicate bounds are summed.
    assert bucket_quantile(0.5, [(1.0, 1.0), (1.0, 1.0), (math.inf, 4.0)])[0] == 1.0


def test_histogram_quantile_ignores_bad_le_with_a_warning() -> None:
    vec = vector({L(le="abc"): [1.0], L(le="+Inf"): [1.0], L(le="1"): [1.0]})
    out, ctx = run("histogram_quantile", [scalar(0.5), vec])
    approx(as_dict(out), {L(): 0.5})
    assert ctx.warnings == [
        'PromQL warning: bucket label "le" is missing or has a malformed value of "abc"'
    ]


def test_histogram_fraction_classic() -> None:
    vec = vector(_buckets("h2_bucket", {"0": 0, "2": 10, "4": 20, "6": 30, "+Inf": 30}))
    for upper, want in ((4, 0.6666666666666666), (6, 1), (3.5, 0.5833333333333334)):
        out, _ = run("histogram_fraction", [scalar(0), scalar(upper), vec])
        approx(as_dict(out), {L(): want})
    h3 = vector(
        _buckets("h3_bucket", {"0": 0, "0.1": 50, ".2": 70, "1e0": 110, "+Inf": 110}, start="p")
    )
    approx(
        as_dict(run("histogram_fraction", [scalar(0), scalar(0.2), h3])[0]), {L(start="p"): 7 / 11}
    )


def test_histogram_quantiles_labels_each_quantile() -> None:
    vec = vector(_buckets("h2_bucket", {"0": 0, "2": 10, "4": 20, "6": 30, "+Inf": 30}))
    out, _ = run("histogram_quantiles", [vec, String("q"), scalar(0.5), scalar(1)])
    approx(as_dict(out), {L(q="0.5"): 3, L(q="1.0"): 6})


def test_native_only_functions_return_nothing_on_floats() -> None:
    vec = vector({L(a="b"): [1.0]})
    assert as_dict(run("histogram_count", [vec])[0]) == {}


def test_go_float_formatting() -> None:
    assert [go_float(x) for x in (2.0, 0.5, 1e21, 1e20, 1e-5, -1.5, math.nan)] == [
        "2",
        "0.5",
        "1e+21",
        "100000000000000000000",
        "1e-05",
        "-1.5",
        "NaN",
    ]
    assert openmetrics_float(1.0) == "1.0" and openmetrics_float(0.25) == "0.25"


# --- the table ---------------------------------------------------------------------


def test_specs_follow_prometheus_signatures() -> None:
    label_join = FUNCTIONS["label_join"]
    assert (label_join.min_args, label_join.max_args, label_join.keeps_name) == (3, -1, True)
    assert (FUNCTIONS["round"].min_args, FUNCTIONS["round"].max_args) == (1, 2)
    assert (FUNCTIONS["year"].min_args, FUNCTIONS["year"].max_args) == (0, 1)
    assert FUNCTIONS["histogram_quantiles"].max_args == 12
    assert FUNCTIONS["scalar"].return_type == "scalar"
    assert FUNCTIONS["quantile_over_time"].arg_types == ("scalar", "matrix")
    experimental = {n for n, s in FUNCTIONS.items() if s.experimental}
    assert {
        "double_exponential_smoothing",
        "mad_over_time",
        "sort_by_label",
        "info",
        "first_over_time",
        "ts_of_max_over_time",
    } <= experimental
    assert not {"rate", "last_over_time", "histogram_quantile", "label_replace"} & experimental
    assert "holt_winters" not in FUNCTIONS
    assert FUNCTIONS["last_over_time"].keeps_name and not FUNCTIONS["rate"].keeps_name
