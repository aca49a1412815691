"""The Prometheus HTTP API's routes: parameters, envelopes and values as Prometheus writes them.

The engine is a fake that returns what the test gives it (the engine has its
own tests, and ``test_promql_vs_prometheus`` runs the real one against
Prometheus); series, labels and metadata come from an in-memory store.
"""

from __future__ import annotations

import math
import threading
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette

from tests.asgi import AppClient
from tinct import __version__
from tinct.errors import StorageError
from tinct.metrics import MetricMetadata, SampleBuilder, sorted_labels
from tinct.promql.api import PrometheusAPI
from tinct.promql.api_params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    format_timestamp,
    format_value,
    parse_duration_ms,
    parse_time,
)
from tinct.promql.result import (
    BadQueryError,
    ExecutionError,
    QueryResult,
    QueryTimeoutError,
    TooManySamplesError,
)
from tinct.storage.memory_metrics import InMemoryMetricStore

NOW_S = 1_700_000_000.0
FLAGS = {
    "query.timeout": "2m",
    "query.max-samples": "50000000",
    "query.lookback-delta": "5m",
    "query.max-concurrency": "20",
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class FakeEngine:
    """Answers every query with ``result`` (or raises ``error``); records calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.result = QueryResult("vector", [])
        self.error: Exception | None = None
        self.release: threading.Event | None = None

    def _answer(self) -> QueryResult:
        if self.release is not None:
            self.release.wait(10)
        if self.error is not None:
            raise self.error
        return self.result

    def instant(self, query: str, time_ms: int) -> QueryResult:
        self.calls.append(("instant", query, time_ms))
        return self._answer()

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        self.calls.append(("range", query, start_ms, end_ms, step_ms))
        return self._answer()


def _store() -> InMemoryMetricStore:
    store = InMemoryMetricStore()
    builder = SampleBuilder()
    day = 86_400_000
    t0 = int(NOW_S * 1000)
    for labels, ts in [
        ({"__name__": "up", "job": "node", "instance": "a:9100"}, t0),
        ({"__name__": "up", "job": "node", "instance": "b:9100"}, t0),
        ({"__name__": "up", "job": "redis", "instance": "r:9121"}, t0),
        ({"__name__": "http_requests_total", "job": "api", "code": "200"}, t0),
        ({"__name__": "old_metric", "job": "gone"}, t0 - 10 * day),
    ]:
        builder.add_mapping(labels, ts, 1.0)
    store.write_samples(builder.take())
    store.write_metadata(
        [
            MetricMetadata("up", "gauge", "Whether the target is up."),
            MetricMetadata("http_requests_total", "counter", "Requests.", ""),
            MetricMetadata("node_cpu_seconds_total", "counter", "CPU time.", "seconds"),
        ]
    )
    return store


class Harness:
    def __init__(self, *, engine: bool = True, store: bool = True) -> None:
        self.engine = FakeEngine()
        self.store = _store()
        self.has_engine = engine
        self.has_store = store
        api = PrometheusAPI(
            lambda: self.engine if self.has_engine else None,
            lambda: self.store if self.has_store else None,
            flags=FLAGS,
            config_yaml=lambda: "global:\n  scrape_interval: 15s\n",
            clock=lambda: NOW_S,
        )
        self.client = AppClient(Starlette(routes=api.routes()))

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params)

    def post(self, path: str, data: Any, params: Any = None) -> Any:
        return self.client.post(path, content=urlencode(data), params=params, headers=FORM)


@pytest.fixture
def h() -> Harness:
    return Harness()


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "success", body
    return body


def _bad(response: Any, status: int = 400, error_type: str = "bad_data") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"status", "errorType", "error"}, body
    assert body["status"] == "error"
    assert body["errorType"] == error_type
    return str(body["error"])


# -- value and parameter formats ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (100.0, "100"),
        (-2.5, "-2.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1 / 3, "0.3333333333333333"),
        (0.001, "0.001"),
        (1.5e-6, "0.0000015"),
        (1e-6, "0.000001"),
        (9.99e-7, "9.99e-07"),
        (5e-324, "5e-324"),
        (1e20, "100000000000000000000"),
        (1.2345678901234568e17, "123456789012345680"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_values_are_written_as_go_writes_them(value: float, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [(1500, "1.500"), (1000, "1"), (1005, "1.005"), (1050, "1.050"), (-1500, "-1.500"), (0, "0")],
)
def test_timestamps_are_seconds_with_milliseconds_written_out(ms: int, text: str) -> None:
    assert format_timestamp(ms) == text


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1435781451.781", 1435781451781),
        ("1435781451", 1435781451000),
        ("1e3", 1_000_000),
        ("-1.5", -1500),
        ("1.0005", 1000),
        ("2015-07-01T20:10:51.781Z", 1435781451781),
        ("2015-07-01T20:10:51Z", 1435781451000),
        ("2015-07-01T22:10:51.781+02:00", 1435781451781),
        ("2015-07-01T20:10:51.781999999Z", 1435781451781),
        ("-292273086-05-16T16:47:06Z", MIN_TIME_MS),
        ("292277025-08-18T07:12:54.999999999Z", MAX_TIME_MS),
    ],
)
def test_times_parse_as_prometheus_parse_time(text: str, ms: int) -> None:
    assert parse_time(text, "time") == ms


@pytest.mark.parametrize(
    ("text", "ms"), [("15", 15_000), ("0.5", 500), ("1m30s", 90_000), ("2h", 7_200_000)]
)
def test_durations_are_float_seconds_or_prometheus_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text, "step") == ms


# -- /api/v1/query -------------------------------------------------------------


def test_instant_query_answers_a_vector_in_prometheus_shape(h: Harness) -> None:
    h.engine.result = QueryResult(
        "vector",
        [
            ({"job": "node", "__name__": "up"}, (1435781451781, 1.0)),
            ({"job": "x"}, (1435781451000, math.nan)),
            ({}, (1435781451500, -math.inf)),
        ],
    )
    response = h.get("/api/v1/query", query="up", time="1435781451.781")
    assert response.text == (
        '{"status":"success","data":{"resultType":"vector","result":['
        '{"metric":{"__name__":"up","job":"node"},"value":[1435781451.781,"1"]},'
        '{"metric":{"job":"x"},"value":[1435781451,"NaN"]},'
        '{"metric":{},"value":[1435781451.500,"-Inf"]}]}}'
    )
    assert h.engine.calls == [("instant", "up", 1435781451781)]


def test_instant_query_by_post_form_and_default_time_from_the_clock(h: Harness) -> None:
    h.engine.result = QueryResult("scalar", (1_700_000_000_000, 2.5))
    body = _ok(h.post("/api/v1/query", {"query": "1+1.5"}))
    assert body == {"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "2.5"]}}
    assert h.engine.calls == [("instant", "1+1.5", 1_700_000_000_000)]


def test_post_body_wins_over_the_url(h: Harness) -> None:
    _ok(h.post("/api/v1/query", {"query": "from_body", "time": "10"}, {"query": "from_url"}))
    assert h.engine.calls == [("instant", "from_body", 10_000)]


def test_post_without_a_form_content_type_reads_only_the_url(h: Harness) -> None:
    response = h.client.post(
        "/api/v1/query", params={"query": "up", "time": "5"}, content=b"query=other"
    )
    _ok(response)
    assert h.engine.calls == [("instant", "up", 5000)]


def test_string_result_and_annotations(h: Harness) -> None:
    h.engine.result = QueryResult(
        "string", (1000, 'a "b"'), warnings=["PromQL warning: x"], infos=["PromQL info: y"]
    )
    body = _ok(h.get("/api/v1/query", query='"a \\"b\\""', time="1"))
    assert body == {
        "status": "success",
        "data": {"resultType": "string", "result": [1, 'a "b"']},
        "warnings": ["PromQL warning: x"],
        "infos": ["PromQL info: y"],
    }


def test_empty_annotations_are_left_out(h: Harness) -> None:
    body = _ok(h.get("/api/v1/query", query="up", time="1"))
    assert body == {"status": "success", "data": {"resultType": "vector", "result": []}}


def test_limit_truncates_series_with_a_warning(h: Harness) -> None:
    h.engine.result = QueryResult("vector", [({"i": str(i)}, (1000, float(i))) for i in range(3)])
    body = _ok(h.get("/api/v1/query", query="x", time="1", limit="2"))
    assert [r["metric"]["i"] for r in body["data"]["result"]] == ["0", "1"]
    assert body["warnings"] == ["results truncated due to limit"]
    body = _ok(h.get("/api/v1/query", query="x", time="1", limit="3"))
    assert "warnings" not in body
    error = _bad(h.get("/api/v1/query", query="x", limit="-1"))
    assert error == 'invalid parameter "limit": limit must be non-negative'
    error = _bad(h.get("/api/v1/query", query="x", limit="ten"))
    assert error == 'invalid parameter "limit": strconv.Atoi: parsing "ten": invalid syntax'


def test_bad_time_is_bad_data(h: Harness) -> None:
    error = _bad(h.get("/api/v1/query", query="up", time="yesterday"))
    assert error == 'invalid parameter "time": cannot parse "yesterday" to a valid timestamp'
    assert h.engine.calls == []


def test_parse_error_is_a_bad_query_parameter_with_its_position(h: Harness) -> None:
    h.engine.error = BadQueryError("parse error: unexpected end of input inside braces")
    error = _bad(h.get("/api/v1/query", query="up{", time="1"))
    assert (
        error
        == 'invalid parameter "query": 1:4: parse error: unexpected end of input inside braces'
    )


def test_engine_errors_map_to_prometheus_statuses(h: Harness) -> None:
    h.engine.error = ExecutionError("found duplicate series for the match group")
    error = _bad(h.get("/api/v1/query", query="a * on() b", time="1"), 422, "execution")
    assert error == "found duplicate series for the match group"
    h.engine.error = TooManySamplesError("query processing would load too many samples")
    _bad(h.get("/api/v1/query", query="up", time="1"), 422, "execution")
    h.engine.error = QueryTimeoutError("query timed out in expression evaluation")
    _bad(h.get("/api/v1/query", query="up", time="1"), 503, "timeout")


def test_timeout_parameter_stops_waiting(h: Harness) -> None:
    h.engine.release = threading.Event()
    try:
        error = _bad(h.get("/api/v1/query", query="up", time="1", timeout="50ms"), 503, "timeout")
    finally:
        h.engine.release.set()
    assert "timed out" in error
    error = _bad(h.get("/api/v1/query", query="up", timeout="soon"))
    assert error == 'invalid parameter "timeout": cannot parse "soon" to a valid duration'


def test_no_engine_yet_is_unavailable_with_retry_after() -> None:
    h = Harness(engine=False, store=False)
    response = h.get("/api/v1/query", query="up")
    _bad(response, 503, "unavailable")
    assert response.headers["Retry-After"]
    _bad(h.get("/api/v1/series", **{"match[]": "up"}), 503, "unavailable")
    _bad(h.get("/api/v1/labels"), 503, "unavailable")


# -- /api/v1/query_range -------------------------------------------------------


def test_range_query_answers_a_matrix(h: Harness) -> None:
    h.engine.result = QueryResult(
        "matrix",
        [({"__name__": "up", "job": "a"}, [(1000, 1.0), (16_000, 0.5)]), ({"job": "b"}, [])],
    )
    response = h.get("/api/v1/query_range", query="up", start="1", end="16", step="15s")
    assert response.text == (
        '{"status":"success","data":{"resultType":"matrix","result":['
        '{"metric":{"__name__":"up","job":"a"},"values":[[1,"1"],[16,"0.5"]]},'
        '{"metric":{"job":"b"},"values":[]}]}}'
    )
    assert h.engine.calls == [("range", "up", 1000, 16_000, 15_000)]


def test_range_query_by_post_with_rfc3339_and_float_step(h: Harness) -> None:
    h.engine.result = QueryResult("matrix", [])
    form = {
        "query": "rate(x[5m])",
        "start": "2015-07-01T20:10:30.781Z",
        "end": "2015-07-01T20:11:00.781Z",
        "step": "7.5",
    }
    _ok(h.post("/api/v1/query_range", form))
    assert h.engine.calls == [("range", "rate(x[5m])", 1435781430781, 1435781460781, 7500)]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (
            {"end": "10", "step": "1"},
            'invalid parameter "start": cannot parse "" to a valid timestamp',
        ),
        ({"start": "x", "end": "10", "step": "1"}, 'invalid parameter "start": cannot parse "x"'),
        ({"start": "10", "end": "5", "step": "1"}, "end timestamp must not be before start time"),
        ({"start": "0", "end": "10", "step": "x"}, 'invalid parameter "step": cannot parse "x"'),
        ({"start": "0", "end": "10", "step": "0"}, "zero or negative query resolution step"),
        ({"start": "0", "end": "10", "step": "-1s"}, 'invalid parameter "step"'),
        ({"start": "0", "end": "10", "step": "-1"}, "zero or negative query resolution step"),
        ({"start": "0", "end": "11001", "step": "1"}, "exceeded maximum resolution of 11,000"),
    ],
)
def test_range_parameter_errors(h: Harness, params: dict[str, str], error: str) -> None:
    assert _bad(h.get("/api/v1/query_range", query="up", **params)).startswith(error)
    assert h.engine.calls == []


def test_range_at_the_points_limit_is_accepted(h: Harness) -> None:
    h.engine.result = QueryResult("matrix", [])
    _ok(h.get("/api/v1/query_range", query="up", start="0", end="11000", step="1"))


# -- /api/v1/series, labels, label values ------------------------------------


def test_series_by_get_and_post(h: Harness) -> None:
    body = _ok(h.get("/api/v1/series", **{"match[]": 'up{job="node"}'}))
    assert body["data"] == [
        {"__name__": "up", "instance": "a:9100", "job": "node"},
        {"__name__": "up", "instance": "b:9100", "job": "node"},
    ]
    body = _ok(
        h.post(
            "/api/v1/series", [("match[]", "http_requests_total"), ("match[]", 'up{job=~"red.*"}')]
        )
    )
    assert body["data"] == [
        {"__name__": "http_requests_total", "code": "200", "job": "api"},
        {"__name__": "up", "instance": "r:9121", "job": "redis"},
    ]


def test_series_union_removes_duplicates_and_honours_limit(h: Harness) -> None:
    client = h.client
    response = client.get(
        "/api/v1/series", params=[("match[]", "up"), ("match[]", '{job="node"}'), ("limit", "2")]
    )
    body = _ok(response)
    assert [s["instance"] for s in body["data"]] == ["a:9100", "b:9100"]
    assert body["warnings"] == ["results truncated due to limit"]


def test_series_window_defaults_to_all_time_and_start_end_narrow_it(h: Harness) -> None:
    body = _ok(h.get("/api/v1/series", **{"match[]": '{job="gone"}'}))
    assert [s["__name__"] for s in body["data"]] == ["old_metric"]
    body = _ok(h.get("/api/v1/series", **{"match[]": '{job="gone"}', "start": str(NOW_S - 3600)}))
    assert body["data"] == []


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, "no match[] parameter provided"),
        ({"match[]": 'up{job=~"("}'}, 'invalid parameter "match[]": '),
        ({"match[]": "rate(up[5m])"}, 'invalid parameter "match[]": '),
        ({"match[]": "up{"}, 'invalid parameter "match[]": 1:4: parse error: unexpected end'),
        ({"match[]": '{job=~".*"}'}, "non-empty matcher"),
        ({"match[]": "up", "start": "soon"}, 'invalid parameter "start": cannot parse "soon"'),
        ({"match[]": "up", "limit": "x"}, 'invalid parameter "limit"'),
    ],
)
def test_series_parameter_errors(h: Harness, params: dict[str, str], error: str) -> None:
    message = _bad(h.get("/api/v1/series", **params))
    assert message.startswith(error) or error in message, message


def test_labels(h: Harness) -> None:
    body = _ok(h.get("/api/v1/labels"))
    assert body["data"] == ["__name__", "code", "instance", "job"]
    body = _ok(h.post("/api/v1/labels", {"match[]": "http_requests_total"}))
    assert body["data"] == ["__name__", "code", "job"]
    body = _ok(h.get("/api/v1/labels", limit="1"))
    assert body == {
        "status": "success",
        "data": ["__name__"],
        "warnings": ["results truncated due to limit"],
    }
    body = _ok(h.get("/api/v1/labels", **{"match[]": "nothing_here"}))
    assert body["data"] == []
    assert "bad regex" not in _bad(h.get("/api/v1/labels", **{"match[]": 'up{a=~"["}'}))


def test_label_values(h: Harness) -> None:
    body = _ok(h.get("/api/v1/label/job/values"))
    assert body["data"] == ["api", "gone", "node", "redis"]
    body = _ok(h.get("/api/v1/label/__name__/values", **{"match[]": '{job=~"node|api"}'}))
    assert body["data"] == ["http_requests_total", "up"]
    body = _ok(h.post("/api/v1/label/instance/values", {"match[]": "up", "limit": "1"}))
    assert body["data"] == ["a:9100"]
    assert body["warnings"] == ["results truncated due to limit"]
    assert _ok(h.get("/api/v1/label/nope/values"))["data"] == []
    assert _bad(h.get("/api/v1/label/1bad/values")) == 'invalid label name: "1bad"'


# -- metadata, exemplars, status -----------------------------------------------


def test_metadata(h: Harness) -> None:
    body = _ok(h.get("/api/v1/metadata"))
    assert body["data"] == {
        "http_requests_total": [{"type": "counter", "help": "Requests.", "unit": ""}],
        "node_cpu_seconds_total": [{"type": "counter", "help": "CPU time.", "unit": "seconds"}],
        "up": [{"type": "gauge", "help": "Whether the target is up.", "unit": ""}],
    }
    assert list(_ok(h.post("/api/v1/metadata", {"metric": "up"}))["data"]) == ["up"]
    assert len(_ok(h.get("/api/v1/metadata", limit="2"))["data"]) == 2
    assert _ok(h.get("/api/v1/metadata", limit="0"))["data"] == {}
    assert len(_ok(h.get("/api/v1/metadata", limit_per_metric="1"))["data"]) == 3
    assert _ok(h.get("/api/v1/metadata", metric="nope"))["data"] == {}
    assert _bad(h.get("/api/v1/metadata", limit="x")) == "limit must be a number"
    assert (
        _bad(h.get("/api/v1/metadata", limit_per_metric="x")) == "limit_per_metric must be a number"
    )


def test_query_exemplars_are_empty_but_the_query_is_checked(h: Harness) -> None:
    assert _ok(h.get("/api/v1/query_exemplars", query="rate(up[5m])"))["data"] == []
    assert _ok(h.post("/api/v1/query_exemplars", {"query": "up", "start": "1", "end": "2"}))
    assert h.get("/api/v1/query_exemplars", query="1 + 1").text == '{"status":"success"}'
    assert _bad(h.get("/api/v1/query_exemplars", query="up{")).startswith(
        'invalid parameter "query": 1:4: parse error'
    )
    error = _bad(h.get("/api/v1/query_exemplars", query="up", start="5", end="1"))
    assert error == "end timestamp must not be before start timestamp"


def test_status_endpoints(h: Harness) -> None:
    info = _ok(h.get("/api/v1/status/buildinfo"))["data"]
    assert info["version"] == __version__
    assert {"revision", "branch", "buildUser", "buildDate", "goVersion"} <= set(info)
    assert "features" not in info  # Grafana: no features means "Prometheus"
    assert _ok(h.post("/api/v1/status/config", {}))["data"] == {
        "yaml": "global:\n  scrape_interval: 15s\n"
    }
    assert _ok(h.get("/api/v1/status/flags"))["data"] == FLAGS


def test_labels_from_the_store_keep_their_order_and_escapes(h: Harness) -> None:
    h.engine.result = QueryResult(
        "vector", [(dict(sorted_labels({"z": "1", "a": 'q"\\\n', "é": "ü"})), (0, 1.0))]
    )
    body = _ok(h.get("/api/v1/query", query="x", time="0"))
    metric = body["data"]["result"][0]["metric"]
    assert list(metric) == ["a", "z", "é"]
    assert metric["a"] == 'q"\\\n'


def test_store_failure_is_internal_in_the_envelope(h: Harness) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("connection refused")

    h.store.series = fail  # type: ignore[method-assign]
    assert _bad(h.get("/api/v1/series", **{"match[]": "up"}), 500, "internal") == (
        "store failed: connection refused"
    )
    h.engine.error = RuntimeError("boom")
    assert "boom" in _bad(h.get("/api/v1/query", query="up", time="1"), 500, "internal")
