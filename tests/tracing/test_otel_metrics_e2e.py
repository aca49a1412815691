"""A real OpenTelemetry SDK exporting metrics to tinct's receivers, into a metric store.

The SDK's own ``OTLPMetricExporter`` (HTTP, and gRPC when installed) talks to
the receiver over loopback (uvicorn in a thread for HTTP, a ``grpc.aio``
server in a thread for gRPC); the samples go through ``sample_batch_writer``
into an :class:`~tinct.storage.InMemoryMetricStore` and are read back by
name and labels, as a PromQL query would find them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from tests.appserver import serve_app
from tinct.metrics import Matcher, Series
from tinct.selfmetrics import SelfMetrics
from tinct.storage import BatchWriter, InMemoryMetricStore, sample_batch_writer
from tinct.tracing.grpc_receiver import OtlpGrpcReceiver, create_grpc_server
from tinct.tracing.receivers import create_otlp_http_app

GRPC_EXPORTER = "opentelemetry.exporter.otlp.proto.grpc.metric_exporter"
RESOURCE = {
    "service.name": "checkout",
    "service.namespace": "shop",
    "service.instance.id": "pod-7",
    "deployment.environment.name": "test",
}
TARGET = {"job": "shop/checkout", "instance": "pod-7"}
SCOPE = {"otel_scope_name": "shop.checkout", "otel_scope_version": "1.2.0"}
DELTA: dict[type, AggregationTemporality] = {
    Counter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
}


@dataclass
class Receiver:
    store: InMemoryMetricStore
    writer: BatchWriter
    transport: str
    endpoint: str

    def exporter(self, temporality: dict[type, AggregationTemporality] | None = None) -> Any:
        if self.transport == "http":
            return HttpMetricExporter(
                endpoint=f"{self.endpoint}/v1/metrics", preferred_temporality=temporality
            )
        module = pytest.importorskip(GRPC_EXPORTER)
        return module.OTLPMetricExporter(
            endpoint=self.endpoint, insecure=True, preferred_temporality=temporality
        )

    def series(self, name: str, **labels: str) -> list[Series]:
        self.writer.flush(10)
        matchers = [Matcher("__name__", "=", name)]
        matchers += [Matcher(k, "=", v) for k, v in labels.items()]
        return self.store.series(matchers, 0, 2**62)

    def values(self, name: str, **labels: str) -> list[float]:
        """The samples of the one series matching, oldest first."""
        (found,) = self.series(name, **labels)
        table = self.store.samples([found.fingerprint], 0, 2**62)
        return [float(v) for v in table.column("value").to_pylist()]


@contextmanager
def _grpc_server(receiver: OtlpGrpcReceiver) -> Iterator[str]:
    """A grpc.aio server on its own event loop in a thread; yields host:port."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def run() -> None:
        server = create_grpc_server(receiver)
        state["port"] = server.add_insecure_port("127.0.0.1:0")
        state["stop"] = stop = asyncio.Event()
        await server.start()
        ready.set()
        try:
            await stop.wait()
        finally:
            await server.stop(None)

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the gRPC server did not start"
    try:
        yield f"127.0.0.1:{state['port']}"
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(10)
        assert not thread.is_alive(), "the gRPC server did not stop"
        loop.close()


@pytest.fixture(params=["http", "grpc"])
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    if request.param == "grpc" and importlib.util.find_spec(GRPC_EXPORTER) is None:
        pytest.skip("opentelemetry-exporter-otlp-proto-grpc is not installed")
    store = InMemoryMetricStore()
    writer = sample_batch_writer(store, max_delay=0.05)
    metrics = SelfMetrics(process_collectors=False)
    try:
        if request.param == "http":
            meta = store.write_metadata
            app = create_otlp_http_app(
                None, metric_writer=writer, metric_metadata_sink=meta, metrics=metrics
            )
            with serve_app(app) as url:
                yield Receiver(store, writer, "http", url)
        else:
            grpc_receiver = OtlpGrpcReceiver(
                None, metrics, metric_writer=writer, metric_metadata_sink=store.write_metadata
            )
            with _grpc_server(grpc_receiver) as address:
                yield Receiver(store, writer, "grpc", address)
    finally:
        writer.close(10)


def provider(exporter: Any) -> MeterProvider:
    """A MeterProvider exporting only when flushed, with explicit latency buckets."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)
    view = View(
        instrument_name="http.server.request.duration",
        aggregation=ExplicitBucketHistogramAggregation([0.005, 0.1, 1.0]),
    )
    return MeterProvider(metric_readers=[reader], resource=Resource.create(RESOURCE), views=[view])


def test_sdk_instruments_become_prometheus_series(receiver: Receiver) -> None:
    sdk = provider(receiver.exporter())
    meter = sdk.get_meter("shop.checkout", "1.2.0")
    orders = meter.create_counter("orders", unit="{order}", description="Orders placed")
    orders.add(3, {"payment.method": "card"})
    orders.add(4, {"payment.method": "card"})
    items = meter.create_up_down_counter("cart.items", unit="{item}")
    items.add(5)
    items.add(-2)

    def utilization(options: CallbackOptions) -> list[Observation]:
        return [Observation(0.25, {"queue": "payments"})]

    meter.create_observable_gauge("queue.utilization", [utilization], unit="1")
    latency = meter.create_histogram("http.server.request.duration", unit="s")
    for seconds in (0.004, 0.05, 0.5):
        latency.record(seconds, {"http.route": "/pay"})
    try:
        assert sdk.force_flush(10_000)
    finally:
        sdk.shutdown()

    labels = {**TARGET, **SCOPE}
    (counter,) = receiver.series("orders_total", payment_method="card")
    assert counter.labels == {"__name__": "orders_total", "payment_method": "card", **labels}
    assert receiver.values("orders_total")[-1] == 7
    assert receiver.values("cart_items", **labels)[-1] == 3
    assert receiver.values("queue_utilization_ratio", queue="payments")[-1] == 0.25
    name = "http_server_request_duration_seconds"
    assert receiver.values(name + "_count", http_route="/pay")[-1] == 3
    assert receiver.values(name + "_sum")[-1] == pytest.approx(0.554)
    buckets = {
        s.labels["le"]: receiver.values(name + "_bucket", le=s.labels["le"])[-1]
        for s in receiver.series(name + "_bucket")
    }
    assert buckets == {"0.005": 1, "0.1": 2, "1": 3, "+Inf": 3}
    (info,) = receiver.series("target_info")
    assert info.labels["deployment_environment_name"] == "test"
    assert info.labels["telemetry_sdk_language"] == "python"
    assert {k: info.labels[k] for k in TARGET} == TARGET
    assert "service_name" not in info.labels
    metadata = {m.metric: m for m in receiver.store.metadata()}
    assert metadata["orders_total"].type == "counter"
    assert metadata["orders_total"].help == "Orders placed"
    assert metadata[name].type == "histogram" and metadata[name].unit == "seconds"
    assert metadata["queue_utilization_ratio"].unit == "ratio"


def test_sdk_delta_temporality_is_stored_cumulative(receiver: Receiver) -> None:
    sdk = provider(receiver.exporter(DELTA))
    meter = sdk.get_meter("shop.checkout", "1.2.0")
    orders = meter.create_counter("orders")
    latency = meter.create_histogram("http.server.request.duration", unit="s")
    try:
        orders.add(3)
        latency.record(0.004)
        assert sdk.force_flush(10_000)
        time.sleep(0.01)  # the next export lands on another millisecond
        orders.add(4)
        latency.record(0.05)
        latency.record(0.5)
        assert sdk.force_flush(10_000)
    finally:
        sdk.shutdown()

    assert receiver.values("orders_total") == [3, 7]
    name = "http_server_request_duration_seconds"
    assert receiver.values(name + "_count") == [1, 3]
    assert receiver.values(name + "_bucket", le="0.1") == [1, 2]
    assert receiver.values(name + "_bucket", le="+Inf") == [1, 3]
    assert receiver.values(name + "_sum")[-1] == pytest.approx(0.554)
