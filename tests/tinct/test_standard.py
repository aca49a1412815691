"""The data standard: layers, catalog checks, OpenTelemetry → Prometheus names."""

from __future__ import annotations

import pytest

from tinct.catalog import CATALOG
from tinct.naming import prometheus_name
from tinct.standard import ENTITY_LABELS, Catalog, Layer, MetricSpec, MetricType


@pytest.mark.parametrize(
    ("otel", "unit", "kind", "expected"),
    [
        # The examples of OpenTelemetry's Prometheus compatibility spec and DESIGN.md.
        ("http.server.request.duration", "s", "histogram", "http_server_request_duration_seconds"),
        ("system.cpu.utilization", "1", "gauge", "system_cpu_utilization_ratio"),
        ("system.cpu.time", "s", "counter", "system_cpu_time_seconds_total"),
        ("system.network.io", "By", "counter", "system_network_io_bytes_total"),
        ("system.network.packets", "{packet}", "counter", "system_network_packets_total"),
        ("system.disk.throughput", "By/s", "gauge", "system_disk_throughput_bytes_per_second"),
        ("process.runtime.requests", "1", "counter", "process_runtime_requests_total"),
        ("already_seconds", "s", "gauge", "already_seconds"),
        ("jobs.total", "{job}", "counter", "jobs_total"),
        ("weird-name/with spaces", "ms", "gauge", "weird_name_with_spaces_milliseconds"),
    ],
)
def test_prometheus_names(otel: str, unit: str, kind: str, expected: str) -> None:
    name = prometheus_name(otel, unit, counter=kind == "counter", gauge=kind == "gauge")
    assert name == expected


def test_every_layer_has_its_entity_labels() -> None:
    assert set(ENTITY_LABELS) == set(Layer)
    assert [layer.value for layer in Layer] == [
        "infrastructure",
        "component",
        "service",
        "interface",
        "user",
    ]


def test_catalog_is_consistent() -> None:
    names = [spec.name for spec in CATALOG]
    assert len(names) == len(set(names))
    for spec in CATALOG:
        if spec.unit:
            assert f"_{spec.unit}" in spec.name, spec
        if spec.type is MetricType.COUNTER and not spec.is_prefix:
            assert not spec.name.endswith("_total"), f"{spec.name}: families drop _total"
    for layer in (Layer.INFRASTRUCTURE, Layer.COMPONENT):
        assert CATALOG.by_layer(layer), layer


def test_problems_name_what_is_wrong() -> None:
    ok = {"layer": "component", "component": "redis", "instance": "127.0.0.1:6379", "db": "db0"}
    assert CATALOG.problems("redis_db_keys", ok) == []
    assert CATALOG.problems("redis_commands_processed_total", ok) == []
    assert CATALOG.problems("nope_total", ok) == ["nope_total: not in the catalog"]
    wrong_layer = {**ok, "layer": "service"}
    assert CATALOG.problems("redis_db_keys", wrong_layer) == [
        "redis_db_keys: layer='service', the catalog says component"
    ]
    missing = {k: v for k, v in ok.items() if k != "db"}
    assert CATALOG.problems("redis_db_keys", missing) == ["redis_db_keys: missing label 'db'"]
    # up carries the target's layer, whatever it is, and that layer's entity labels.
    assert CATALOG.problems("up", {"layer": "infrastructure", "host": "h"}) == []
    assert CATALOG.problems("up", {"layer": "infrastructure"}) == ["up: missing label 'host'"]
    assert CATALOG.problems("up", {"layer": "bogus"}) == ["up: layer='bogus' is not a layer"]
    # Prefix families: ClickHouse's per-row metrics.
    assert CATALOG.problems("ClickHouseProfileEvents_Query", ok) == []


def test_catalog_refuses_duplicates_and_unitless_names() -> None:
    spec = MetricSpec("x_bytes", MetricType.GAUGE, "bytes", "x", Layer.SERVICE)
    with pytest.raises(ValueError, match="twice"):
        Catalog([spec, spec])
    with pytest.raises(ValueError, match="does not carry its unit"):
        Catalog([MetricSpec("x", MetricType.GAUGE, "seconds", "x", Layer.SERVICE)])


def test_sample_names_by_type() -> None:
    hist = MetricSpec("d_seconds", MetricType.HISTOGRAM, "seconds", "d", Layer.SERVICE)
    assert set(hist.sample_names()) >= {"d_seconds_bucket", "d_seconds_sum", "d_seconds_count"}
    assert Catalog([hist]).for_sample("d_seconds_bucket") is hist


def test_self_metrics_export_collection_failures_and_dropped_series() -> None:
    from tinct.selfmetrics import SelfMetrics

    class Scheduler:
        errors = {("redis", "127.0.0.1:6379"): 3}

    class Store:
        dropped_series = {"http_requests_total": 12}

    metrics = SelfMetrics(process_collectors=False)
    metrics.watch_collection(Scheduler(), Store())
    text = metrics.exposition()[0].decode()
    assert 'tinct_collect_failures_total{instance="127.0.0.1:6379",job="redis"} 3.0' in text
    assert 'tinct_metric_series_dropped_total{metric="http_requests_total"} 12.0' in text
