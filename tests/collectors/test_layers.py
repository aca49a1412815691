"""Service, interface and user layers from RED meters and from spans."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.storage.spanrows import batch, span
from tinct.catalog import CATALOG
from tinct.collectors.layers import MeterLayers, SpanLayers, status_class
from tinct.metrics import STALE_NAN, SampleBuilder


def red_batch(rows: list[tuple[dict[str, str], float]], ts: int = 1_000) -> pa.Table:
    builder = SampleBuilder()
    for labels, value in rows:
        builder.add_mapping(labels, ts, value)
    return builder.take()


def by_labels(table: pa.Table) -> dict[tuple, float]:
    found = {}
    for row in table.to_pylist():
        labels = dict(zip(row["label_keys"], row["label_values"], strict=True))
        labels["__name__"] = row["metric_name"]
        found[tuple(sorted(labels.items()))] = row["value"]
    return found


def pick(table: pa.Table, name: str, **want: str) -> float:
    hits = [
        v
        for key, v in by_labels(table).items()
        if dict(key)["__name__"] == name and all(dict(key).get(k) == w for k, w in want.items())
    ]
    assert len(hits) == 1, (name, want, by_labels(table))
    return hits[0]


def source(route: str, code: str, suffix: str, **extra: str) -> dict[str, str]:
    return {
        "__name__": f"http_server_request_duration_seconds{suffix}",
        "job": "shop/orders",
        "instance": "i-1",
        "http_route": route,
        "http_request_method": "GET",
        "http_response_status_code": code,
        **extra,
    }


@pytest.mark.parametrize(
    ("code", "error", "expected"),
    [("200", None, "2xx"), (503, None, "5xx"), ("", "Timeout", "error"), (None, None, "unknown")],
)
def test_status_class(code, error, expected) -> None:
    assert status_class(code, error) == expected


def test_meter_layers_sum_routes_into_services_and_keep_interfaces() -> None:
    layers = MeterLayers()
    derived = layers.derive(
        red_batch(
            [
                (source("/orders/{id}", "200", "_count"), 30),
                (source("/orders", "200", "_count"), 12),
                (source("/orders", "500", "_count"), 2),
                (source("/orders", "200", "_bucket", le="0.1"), 10),
                (source("/orders/{id}", "200", "_bucket", le="0.1"), 25),
                ({"__name__": "unrelated_total", "job": "shop/orders"}, 5),
            ]
        ),
        now=100.0,
    )
    count = "service_request_duration_seconds_count"
    assert pick(derived, count, service="orders", status_class="2xx") == 42
    assert pick(derived, count, service="orders", status_class="5xx") == 2
    bucket = "service_request_duration_seconds_bucket"
    assert pick(derived, bucket, service="orders", status_class="2xx", le="0.1") == 35
    icount = "interface_request_duration_seconds_count"
    assert pick(derived, icount, interface="/orders", status_class="2xx", method="GET") == 12
    assert layers.metered(60, now=120.0) == {"orders"}
    assert layers.metered(10, now=120.0) == set()
    for key in by_labels(derived):
        labels = dict(key)
        assert CATALOG.problems(labels["__name__"], labels) == [], labels

    # A later request carrying one route only still gives the service total.
    later = layers.derive(red_batch([(source("/orders", "200", "_count"), 20)], ts=2_000))
    assert pick(later, count, service="orders", status_class="2xx") == 50
    # A source series that ended (staleness marker) leaves the sum.
    ended = layers.derive(red_batch([(source("/orders", "200", "_count"), STALE_NAN)], ts=3_000))
    assert pick(ended, count, service="orders", status_class="2xx") == 30


def test_span_layers_estimate_by_sampling_probability_and_cap_users() -> None:
    now = [1_000.0]
    layers = SpanLayers(metered=lambda: {"metered"}, max_users=2, clock=lambda: now[0])
    spans = batch(
        *[span(**row) for row in [
            # One sampled root at 1/4: stands for four requests.
            dict(service="gateway", kind=2, http_route="/buy", http_method="POST",
                 http_status_code=200, duration_ns=40_000_000, sampling_probability=0.25,
                 enduser_id="u1"),
            dict(service="gateway", kind=2, http_route="/buy", http_method="POST",
                 http_status_code=500, status_code=2, duration_ns=2_000_000_000,
                 sampling_probability=1.0, enduser_id="u2"),
            dict(service="gateway", kind=2, http_route="/buy", http_method="POST",
                 http_status_code=200, duration_ns=1_000_000, sampling_probability=1.0,
                 enduser_id="u3"),
            # Client spans and metered services are not counted here.
            dict(service="gateway", kind=3, duration_ns=5),
            dict(service="metered", kind=2, http_route="/x", duration_ns=5),
        ]]
    )  # fmt: skip
    layers.observe(spans)
    out = layers.collect(now_ms=5_000)
    count = "interface_request_duration_seconds_count"
    assert pick(out, count, interface="/buy", status_class="2xx", estimated="true") == 5
    assert pick(out, count, interface="/buy", status_class="5xx") == 1
    assert pick(out, "service_request_duration_seconds_sum", status_class="2xx") == pytest.approx(
        4 * 0.04 + 0.001
    )
    bucket = "service_request_duration_seconds_bucket"
    assert pick(out, bucket, status_class="2xx", le="0.05") == 5
    assert pick(out, bucket, status_class="5xx", le="1.0") == 0
    assert pick(out, bucket, status_class="5xx", le="+Inf") == 1
    users = {
        dict(k)["user"]
        for k in by_labels(out)
        if dict(k)["__name__"] == "user_request_duration_seconds_count"
    }
    assert users == {"u1", "u2", "other"}  # the third distinct user is over the cap
    assert not any(dict(k).get("service") == "metered" for k in by_labels(out))
    for key in by_labels(out):
        labels = dict(key)
        assert CATALOG.problems(labels["__name__"], labels) == [], labels
    # Nothing changed: nothing to write; a new window names new users.
    assert layers.collect(now_ms=6_000).num_rows == 0
    now[0] += 3600
    layers.observe(batch(span(service="gateway", kind=2, enduser_id="u9", duration_ns=1)))
    later = layers.collect(now_ms=7_000)
    assert any(dict(k).get("user") == "u9" for k in by_labels(later))


def test_spans_are_counted_once_after_the_store_took_them() -> None:
    from tinct.collectors.layers import ObservingSpanWriter
    from tinct.errors import StorageError

    class FlakyStore:
        def __init__(self) -> None:
            self.fail = True

        def write_spans(self, batch: pa.Table) -> None:
            if self.fail:
                self.fail = False
                raise StorageError("down")

    layers = SpanLayers(clock=lambda: 0.0)
    writer = ObservingSpanWriter(FlakyStore(), layers)
    spans = batch(span(service="s", kind=2, http_route="/a", http_status_code=200, duration_ns=1))
    with pytest.raises(StorageError):
        writer.write_spans(spans)  # refused: not counted
    writer.write_spans(spans)  # the retry: counted once
    out = layers.collect(now_ms=1)
    assert pick(out, "interface_request_duration_seconds_count", interface="/a") == 1
