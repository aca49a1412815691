"""OTLP metrics → Prometheus series, rule by rule of the compatibility spec."""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from tests.tracing._codec_samples import kv
from tinct.collectors.otlp_delta import DeltaAccumulator
from tinct.collectors.otlp_labels import format_float, label_name
from tinct.collectors.otlp_metrics import (
    MetricsDecodeResult,
    decode_metrics_json,
    decode_metrics_protobuf,
    decode_metrics_request,
)
from tinct.errors import DecodeError
from tinct.metrics import MetricMetadata, is_stale

T0 = 1_700_000_000_000_000_000  # ns
SEC = 1_000_000_000
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
NO_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
Temporality: TypeAlias = metrics_pb2.AggregationTemporality.ValueType

Sample = tuple[str, dict[str, str], int, float]

RESOURCE: dict[str, Any] = {"service.name": "shop"}


def request(
    *metrics: metrics_pb2.Metric,
    resource: dict[str, Any] | None = None,
    scope: tuple[str, str] = ("", ""),
) -> ExportMetricsServiceRequest:
    """One resource and scope holding ``metrics``."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    attrs = RESOURCE if resource is None else resource
    rm.resource.attributes.extend(kv(k, v) for k, v in attrs.items())
    sm = rm.scope_metrics.add()
    sm.scope.name, sm.scope.version = scope
    sm.metrics.extend(metrics)
    return req


def number_point(
    value: float,
    *,
    t: int = T0,
    start: int = 0,
    flags: int = 0,
    **attrs: Any,
) -> metrics_pb2.NumberDataPoint:
    point = metrics_pb2.NumberDataPoint(time_unix_nano=t, start_time_unix_nano=start, flags=flags)
    if isinstance(value, int):
        point.as_int = value
    else:
        point.as_double = value
    point.attributes.extend(kv(k, v) for k, v in attrs.items())
    return point


def gauge(name: str, *points: metrics_pb2.NumberDataPoint, unit: str = "") -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=name, unit=unit, description=f"{name} help")
    metric.gauge.data_points.extend(points)
    return metric


def sum_metric(
    name: str,
    *points: metrics_pb2.NumberDataPoint,
    unit: str = "",
    monotonic: bool = True,
    temporality: Temporality = CUMULATIVE,
) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=name, unit=unit, description=f"{name} help")
    metric.sum.is_monotonic = monotonic
    metric.sum.aggregation_temporality = temporality
    metric.sum.data_points.extend(points)
    return metric


def histogram_point(
    bounds: list[float],
    buckets: list[int],
    *,
    total: float | None = None,
    t: int = T0,
    start: int = 0,
    flags: int = 0,
    **attrs: Any,
) -> metrics_pb2.HistogramDataPoint:
    point = metrics_pb2.HistogramDataPoint(
        time_unix_nano=t,
        start_time_unix_nano=start,
        count=sum(buckets),
        explicit_bounds=bounds,
        bucket_counts=buckets,
        flags=flags,
    )
    if total is not None:
        point.sum = total
    point.attributes.extend(kv(k, v) for k, v in attrs.items())
    return point


def histogram(
    name: str,
    *points: metrics_pb2.HistogramDataPoint,
    unit: str = "",
    temporality: Temporality = CUMULATIVE,
) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name=name, unit=unit, description=f"{name} help")
    metric.histogram.aggregation_temporality = temporality
    metric.histogram.data_points.extend(points)
    return metric


def decode(req: ExportMetricsServiceRequest, deltas: DeltaAccumulator | None = None) -> Any:
    return decode_metrics_request(req, deltas if deltas is not None else DeltaAccumulator())


def samples(result: MetricsDecodeResult) -> list[Sample]:
    return [
        (
            row["metric_name"],
            dict(zip(row["label_keys"], row["label_values"], strict=True)),
            row["timestamp_ms"],
            row["value"],
        )
        for row in result.batch.to_pylist()
    ]


def series(result: MetricsDecodeResult, name: str) -> list[Sample]:
    return [s for s in samples(result) if s[0] == name]


def value_of(result: MetricsDecodeResult, name: str, **labels: str) -> float:
    (found,) = [s for s in series(result, name) if labels.items() <= s[1].items()]
    return found[3]


# --- names, units, types ---------------------------------------------------


def test_names_units_and_metadata() -> None:
    result = decode(
        request(
            gauge("system.cpu.utilization", number_point(0.25), unit="1"),
            sum_metric("http.requests", number_point(7), unit="{request}"),
            sum_metric("system.cpu.time", number_point(1.5), unit="s"),
            sum_metric("queue.size", number_point(3), unit="By", monotonic=False),
            sum_metric("pool.usage", number_point(3), unit="1", monotonic=False),
            sum_metric("jobs.done_total", number_point(2)),
            gauge("9lives", number_point(1)),
        )
    )
    names = {s[0] for s in samples(result)} - {"target_info"}
    assert names == {
        "system_cpu_utilization_ratio",
        "http_requests_total",
        "system_cpu_time_seconds_total",
        "queue_size_bytes",
        "pool_usage",  # "ratio" is for gauges only (the Collector's rule)
        "jobs_done_total",
        "_9lives",
    }
    assert value_of(result, "http_requests_total") == 7
    meta = {m.metric: m for m in result.metadata}
    assert meta["system_cpu_utilization_ratio"] == MetricMetadata(
        "system_cpu_utilization_ratio", "gauge", "system.cpu.utilization help", "ratio"
    )
    assert meta["system_cpu_time_seconds_total"].type == "counter"
    assert meta["system_cpu_time_seconds_total"].unit == "seconds"
    assert meta["queue_size_bytes"].type == "gauge"
    assert result.points == 7 and result.rejected == 0


def test_prometheus_type_unknown_hint_is_kept() -> None:
    metric = gauge("legacy_thing", number_point(1))
    metric.metadata.append(kv("prometheus.type", "unknown"))
    (meta,) = [m for m in decode(request(metric)).metadata if m.metric == "legacy_thing"]
    assert meta.type == "unknown"


def test_timestamps_are_milliseconds_and_zero_means_received() -> None:
    req = request(gauge("g", number_point(1, t=T0 + 999_999), number_point(2, t=0, x="b")))
    result = decode_metrics_request(req, DeltaAccumulator(), now_ns=lambda: 5 * SEC + 7)
    assert sorted(s[2] for s in series(result, "g")) == [5_000, T0 // 1_000_000]


def test_nothing_is_added_to_the_data_as_sent() -> None:
    result = decode(request(gauge("g", number_point(1, a="x")), resource={}))
    assert samples(result) == [("g", {"a": "x"}, T0 // 1_000_000, 1.0)]


def test_empty_name_is_refused() -> None:
    result = decode(request(gauge("...", number_point(1)), gauge("ok", number_point(1))))
    assert result.rejected == 1 and "'...'" in result.message
    assert [s[0] for s in samples(result) if s[0] != "target_info"] == ["ok"]


# --- labels ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("http.request.method", "http_request_method"),
        ("net.peer-name", "net_peer_name"),
        ("a..b", "a__b"),
        ("2xx", "key_2xx"),
        ("_private", "key_private"),
        ("__meta", "__meta"),
        ("...", ""),
        ("", ""),
    ],
)
def test_label_names(key: str, label: str) -> None:
    assert label_name(key) == label


def test_colliding_keys_are_joined_in_key_order() -> None:
    point = number_point(1)
    point.attributes.extend([kv("a_b", "3"), kv("a.b", "2"), kv("a-b", "1")])
    (sample,) = series(decode(request(gauge("g", point))), "g")
    assert sample[1]["a_b"] == "1;2;3"  # "a-b" < "a.b" < "a_b"


def test_attribute_values_as_strings() -> None:
    point = number_point(1, i=42, f=1.0, small=1e-7, b=True, arr=["x", 2, 0.5], blob=b"\x00\x01")
    labels = series(decode(request(gauge("g", point))), "g")[0][1]
    assert labels["i"] == "42" and labels["f"] == "1" and labels["small"] == "1e-7"
    assert labels["b"] == "true" and labels["arr"] == '["x",2,0.5]'
    assert labels["blob"] == "AAE="


def test_point_with_unnamable_key_is_refused() -> None:
    unnamable = number_point(1)
    unnamable.attributes.append(kv("...", "x"))
    result = decode(request(gauge("g", unnamable, number_point(2, ok="y"))))
    assert result.rejected == 1 and "'...'" in result.message
    assert [s[3] for s in series(result, "g")] == [2.0]


def test_translation_labels_win_over_attributes() -> None:
    point = number_point(1, job="mine", __name__="evil", otel_scope_name="x")
    (sample,) = series(decode(request(gauge("g", point), scope=("lib", "1.2"))), "g")
    assert sample[1]["job"] == "shop"
    assert sample[1]["otel_scope_name"] == "lib" and sample[1]["otel_scope_version"] == "1.2"


# --- resource: job, instance, target_info ----------------------------------


def test_job_instance_and_target_info() -> None:
    resource = {
        "service.name": "cart",
        "service.namespace": "shop",
        "service.instance.id": "pod-1",
        "host.name": "h1",
        "k8s.pod.uid": "u-1",
    }
    req = request(gauge("g", number_point(1, t=T0), number_point(2, t=T0 + 5 * SEC, x="b")))
    req.resource_metrics[0].resource.attributes.extend(kv(k, v) for k, v in resource.items())
    del req.resource_metrics[0].resource.attributes[0]  # the default service.name
    result = decode(req)
    assert {s[1]["job"] for s in series(result, "g")} == {"shop/cart"}
    assert {s[1]["instance"] for s in series(result, "g")} == {"pod-1"}
    assert "host_name" not in series(result, "g")[0][1]
    (info,) = series(result, "target_info")
    assert info[1] == {
        "job": "shop/cart",
        "instance": "pod-1",
        "host_name": "h1",
        "k8s_pod_uid": "u-1",
    }
    assert info[2] == (T0 + 5 * SEC) // 1_000_000 and info[3] == 1.0
    assert MetricMetadata("target_info", "gauge", "Target metadata") in result.metadata


def test_no_target_info_without_other_resource_attributes() -> None:
    result = decode(request(gauge("g", number_point(1)), resource={"service.name": "a"}))
    assert series(result, "target_info") == []
    assert series(result, "g")[0][1] == {"job": "a"}


def test_no_job_without_service_name() -> None:
    result = decode(request(gauge("g", number_point(1)), resource={"host.name": "h"}))
    assert series(result, "g")[0][1] == {}
    assert series(result, "target_info")[0][1] == {"host_name": "h"}


# --- sums ------------------------------------------------------------------


def test_cumulative_counter_is_stored_as_sent() -> None:
    deltas = DeltaAccumulator()
    first = decode(request(sum_metric("c", number_point(5, start=T0, t=T0 + SEC))), deltas)
    second = decode(request(sum_metric("c", number_point(9, start=T0, t=T0 + 2 * SEC))), deltas)
    assert value_of(first, "c_total") == 5 and value_of(second, "c_total") == 9
    assert len(deltas) == 0


def test_non_monotonic_sum_is_a_gauge() -> None:
    result = decode(request(sum_metric("pool.used", number_point(-3), monotonic=False)))
    assert value_of(result, "pool_used") == -3
    assert [m.type for m in result.metadata if m.metric == "pool_used"] == ["gauge"]


def delta_sum(value: int, start: int, end: int, name: str = "c", **attrs: Any) -> Any:
    point = number_point(value, start=T0 + start * SEC, t=T0 + end * SEC, **attrs)
    return request(sum_metric(name, point, temporality=DELTA))


def test_delta_sums_accumulate_across_requests() -> None:
    deltas = DeltaAccumulator()
    exports = [(3, 0, 10), (4, 10, 20), (0, 20, 30), (5, 30, 40)]
    totals = [value_of(decode(delta_sum(v, s, e), deltas), "c_total") for v, s, e in exports]
    assert totals == [3, 7, 7, 12]
    other = decode(delta_sum(2, 30, 40, route="/x"), deltas)
    assert value_of(other, "c_total", route="/x") == 2  # its own series


def test_delta_gap_restarts_the_total() -> None:
    deltas = DeltaAccumulator()
    decode(delta_sum(3, 0, 10), deltas)
    # Starts after the last point ended: the sender restarted or a point was lost.
    assert value_of(decode(delta_sum(4, 15, 25), deltas), "c_total") == 4
    assert value_of(decode(delta_sum(1, 25, 35), deltas), "c_total") == 5


def test_delta_duplicate_and_overlap_are_refused() -> None:
    deltas = DeltaAccumulator()
    decode(delta_sum(3, 0, 10), deltas)
    again = decode(delta_sum(3, 0, 10), deltas)
    assert again.rejected == 1 and "not after the last one" in again.message
    overlap = decode(delta_sum(3, 5, 15), deltas)
    assert overlap.rejected == 1 and "overlaps" in overlap.message
    assert value_of(decode(delta_sum(1, 10, 20), deltas), "c_total") == 4


def test_delta_without_start_time_is_added() -> None:
    deltas = DeltaAccumulator()
    point = number_point(2, t=T0 + SEC)
    decode(request(sum_metric("c", point, temporality=DELTA)), deltas)
    later = number_point(3, t=T0 + 2 * SEC)
    assert (
        value_of(decode(request(sum_metric("c", later, temporality=DELTA)), deltas), "c_total") == 5
    )


def test_uncommitted_transaction_leaves_totals_alone() -> None:
    # What the receiver does when the writer refuses the batch (503): the
    # client's retry must be added once.
    deltas = DeltaAccumulator()
    decode(delta_sum(3, 0, 10), deltas)
    with deltas.transaction() as txn:
        refused = decode_metrics_request(delta_sum(4, 10, 20), txn)
        assert value_of(refused, "c_total") == 7
    assert value_of(decode(delta_sum(4, 10, 20), deltas), "c_total") == 7


def test_non_monotonic_delta_sum_accumulates_as_a_gauge() -> None:
    deltas = DeltaAccumulator()
    values = []
    for v, s, e in [(5, 0, 10), (-2, 10, 20)]:
        point = number_point(v, start=T0 + s * SEC, t=T0 + e * SEC)
        req = request(sum_metric("inflight", point, monotonic=False, temporality=DELTA))
        values.append(value_of(decode(req, deltas), "inflight"))
    assert values == [5, 3]


def test_accumulator_is_bounded() -> None:
    deltas = DeltaAccumulator(max_series=2)
    for route in ("a", "b", "c"):
        decode(delta_sum(1, 0, 10, route=route), deltas)
    assert len(deltas) == 2 and deltas.evicted == 1
    # "a" was forgotten: it starts again (a counter reset to queries).
    assert value_of(decode(delta_sum(1, 10, 20, route="a"), deltas), "c_total") == 1
    assert value_of(decode(delta_sum(1, 10, 20, route="c"), deltas), "c_total") == 2


def test_unspecified_temporality_is_refused() -> None:
    unspecified = metrics_pb2.AGGREGATION_TEMPORALITY_UNSPECIFIED
    metric = sum_metric("c", number_point(1), temporality=unspecified)
    result = decode(request(metric))
    assert result.rejected == 1 and "aggregation_temporality" in result.message
    assert series(result, "c_total") == []


# --- histograms and summaries -------------------------------------------------


def test_histogram_buckets_le_and_cumulative_counts() -> None:
    bounds = [0.005, 0.01, 0.25, 1.0, 2.5, 10.0, 100.0]
    point = histogram_point(bounds, [1, 2, 0, 3, 0, 1, 0, 2], total=12.5, route="/")
    result = decode(request(histogram("http.server.request.duration", point, unit="s")))
    name = "http_server_request_duration_seconds"
    buckets = [(s[1]["le"], s[3]) for s in series(result, name + "_bucket")]
    assert buckets == [
        ("0.005", 1),
        ("0.01", 3),
        ("0.25", 3),
        ("1", 6),
        ("2.5", 6),
        ("10", 7),
        ("100", 7),
        ("+Inf", 9),
    ]
    assert value_of(result, name + "_count") == 9
    assert value_of(result, name + "_sum") == 12.5
    assert [m.type for m in result.metadata if m.metric == name] == ["histogram"]
    assert result.points == 1


def test_le_strings_match_go_formatting() -> None:
    assert [format_float(v) for v in (1e-05, 0.1, 1.0, 5e-324, 1e21, float("inf"))] == [
        "0.00001",
        "0.1",
        "1",
        "0." + "0" * 323 + "5",
        "1000000000000000000000",
        "+Inf",
    ]


def test_histogram_without_sum_or_buckets() -> None:
    point = metrics_pb2.HistogramDataPoint(time_unix_nano=T0, count=4)
    result = decode(request(histogram("h", point)))
    assert series(result, "h_sum") == []
    assert [(s[1]["le"], s[3]) for s in series(result, "h_bucket")] == [("+Inf", 4)]


@pytest.mark.parametrize(
    ("bounds", "buckets", "problem"),
    [
        ([1.0, 2.0], [1, 1], "bucket_counts has 2 entries for 2 explicit_bounds"),
        ([2.0, 1.0], [1, 1, 1], "strictly increasing"),
        ([1.0, float("nan")], [1, 1, 1], "strictly increasing"),
    ],
)
def test_bad_histogram_points_are_refused(
    bounds: list[float], buckets: list[int], problem: str
) -> None:
    good = histogram_point([1.0], [1, 1], x="ok")
    result = decode(request(histogram("h", histogram_point(bounds, buckets), good)))
    assert result.rejected == 1 and problem in result.message
    assert result.points == 1


def test_delta_histograms_accumulate() -> None:
    deltas = DeltaAccumulator()

    def export(buckets: list[int], start: int, end: int, bounds: list[float] | None = None) -> Any:
        start, end = T0 + start * SEC, T0 + end * SEC
        total = float(sum(buckets))
        point = histogram_point(bounds or [1.0, 5.0], buckets, total=total, start=start, t=end)
        return decode(request(histogram("h", point, temporality=DELTA)), deltas)

    export([1, 0, 2], 0, 10)
    second = export([0, 1, 1], 10, 20)
    assert [s[3] for s in series(second, "h_bucket")] == [1, 2, 5]
    assert value_of(second, "h_count") == 5 and value_of(second, "h_sum") == 5
    # Other bounds can't be added to the running buckets: the histogram restarts.
    third = export([1, 1, 1, 1], 20, 30, [1.0, 2.0, 5.0])
    assert [s[3] for s in series(third, "h_bucket")] == [1, 2, 3, 4]


def test_summary_quantiles_sum_count() -> None:
    point = metrics_pb2.SummaryDataPoint(time_unix_nano=T0, count=10, sum=4.5)
    for q, v in ((0.0, 0.1), (0.5, 0.4), (0.99, 0.9), (1.0, 1.2)):
        point.quantile_values.add(quantile=q, value=v)
    metric = metrics_pb2.Metric(name="rpc.duration", unit="ms")
    metric.summary.data_points.append(point)
    result = decode(request(metric))
    name = "rpc_duration_milliseconds"
    quantiles = [(s[1]["quantile"], s[3]) for s in series(result, name)]
    assert quantiles == [("0", 0.1), ("0.5", 0.4), ("0.99", 0.9), ("1", 1.2)]
    assert value_of(result, name + "_sum") == 4.5 and value_of(result, name + "_count") == 10
    assert [m.type for m in result.metadata if m.metric == name] == ["summary"]


def test_summary_quantile_out_of_range_is_refused() -> None:
    point = metrics_pb2.SummaryDataPoint(time_unix_nano=T0, count=1, sum=1)
    point.quantile_values.add(quantile=1.5, value=1)
    metric = metrics_pb2.Metric(name="s")
    metric.summary.data_points.append(point)
    result = decode(request(metric))
    assert result.rejected == 1 and "quantile 1.5" in result.message


# --- no recorded value, exponential histograms, bodies --------------------------


def test_no_recorded_value_is_a_staleness_marker() -> None:
    stale_gauge = gauge("g", number_point(5, flags=NO_VALUE))
    stale_hist = histogram("h", histogram_point([1.0], [1, 1], total=2.0, flags=NO_VALUE))
    result = decode(request(stale_gauge, stale_hist))
    values = [s[3] for s in samples(result) if s[0] != "target_info"]
    assert len(values) == 5  # g, h_sum, h_count, h_bucket{le="1"}, h_bucket{le="+Inf"}
    assert all(is_stale(v) for v in values)
    assert result.points == 2 and result.rejected == 0


def test_no_recorded_value_ends_a_delta_series() -> None:
    deltas = DeltaAccumulator()
    decode(delta_sum(3, 0, 10), deltas)
    point = number_point(0, start=T0 + 10 * SEC, t=T0 + 20 * SEC, flags=NO_VALUE)
    stale = decode(request(sum_metric("c", point, temporality=DELTA)), deltas)
    assert is_stale(value_of(stale, "c_total"))
    assert value_of(decode(delta_sum(2, 20, 30), deltas), "c_total") == 2


def test_exponential_histogram_is_refused_and_counted() -> None:
    metric = metrics_pb2.Metric(name="latency", unit="s")
    metric.exponential_histogram.aggregation_temporality = CUMULATIVE
    for _ in range(3):
        metric.exponential_histogram.data_points.add(time_unix_nano=T0, count=1, scale=2)
    result = decode(request(metric, gauge("g", number_point(1))))
    assert result.rejected == 3
    assert "exponential histograms are not stored" in result.message
    assert "'latency'" in result.message
    assert result.points == 1 and [s[0] for s in samples(result)] == ["g"]


def otlp_json(req: ExportMetricsServiceRequest) -> bytes:
    """OTLP/JSON of ``req``, with an exemplar carrying hex ids as OTLP/JSON has them."""
    doc = json_format.MessageToDict(req)
    point = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0]
    point["exemplars"] = [{"asDouble": 1, "traceId": "0af7651916cd43dd8448eb211c80319c"}]
    return json.dumps(doc).encode()


def test_json_and_protobuf_bodies() -> None:
    req = request(sum_metric("c", number_point(7, start=T0, t=T0 + SEC)))
    from_json = decode_metrics_json(otlp_json(req), DeltaAccumulator())
    from_pb = decode_metrics_protobuf(req.SerializeToString(), DeltaAccumulator())
    assert samples(from_json) == samples(from_pb)
    assert value_of(from_json, "c_total") == 7


@pytest.mark.parametrize(
    ("body", "decoder"),
    [
        (b"\xff\xff\xff", decode_metrics_protobuf),
        (b"{not json", decode_metrics_json),
        (b"[1, 2]", decode_metrics_json),
        (b'{"resourceMetrics": 3}', decode_metrics_json),
    ],
)
def test_undecodable_bodies(body: bytes, decoder: Any) -> None:
    with pytest.raises(DecodeError, match="ExportMetricsServiceRequest|JSON"):
        decoder(body, DeltaAccumulator())
