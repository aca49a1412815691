"""tinct.tracing.setup(): settings precedence, validation, flushing, and end to end."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.servers import TinctProcess
from tinct.errors import ConfigError
from tinct.tracing import Tracing, dye, setup
from tinct.tracing.dyeing import DyeRule
from tinct.tracing.logging import is_instrumented

ENV_VARS = (
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "TINCT_SAMPLING_PROBABILITY",
    "TINCT_SAMPLING_ADAPTIVE_PER_SECOND",
    "TINCT_SERVER",
    "TINCT_DYE_RULES_INTERVAL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def handles() -> Iterator[list[Tracing]]:
    made: list[Tracing] = []
    yield made
    for handle in made:
        handle.shutdown()


def attrs(span) -> dict[str, Any]:
    return dict(span.attributes or {})


def local(handles: list[Tracing], **kwargs) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    handle = setup(set_global=False, span_exporter=exporter, **kwargs)
    handles.append(handle)
    return handle, exporter


def test_otel_env_names_the_service_and_explicit_arguments_win(
    monkeypatch: pytest.MonkeyPatch, handles: list[Tracing]
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.name=from-attrs,team=storage,deployment.environment=prod",
    )
    handle, _ = local(handles)
    attrs = handle.tracer_provider.resource.attributes
    assert (attrs["service.name"], attrs["team"], attrs["deployment.environment"]) == (
        "from-env",
        "storage",
        "prod",
    )
    assert handle.meter_provider._sdk_config.resource.attributes["service.name"] == "from-env"

    handle, _ = local(handles, service_name="orders", resource_attributes={"team": "checkout"})
    attrs = handle.tracer_provider.resource.attributes
    assert (attrs["service.name"], attrs["team"], attrs["deployment.environment"]) == (
        "orders",
        "checkout",
        "prod",
    )


@pytest.mark.parametrize("value", ["abc", "1.5", "-0.1", "nan"])
def test_bad_sampling_probability_in_env_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TINCT_SAMPLING_PROBABILITY", value)
    with pytest.raises(ConfigError, match=r"TINCT_SAMPLING_PROBABILITY=.*0\.\.1"):
        setup(set_global=False, span_exporter=InMemorySpanExporter())


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"sampling_probability": 2.0}, r"sampling_probability=2\.0: not within 0\.\.1"),
        ({"adaptive_per_second": 0}, r"adaptive_per_second=0: .*> 0"),
        ({"endpoint": "localhost:4318"}, r"endpoint='localhost:4318': not an http"),
        ({"rules_server": "tinct:3000"}, r"rules_server='tinct:3000'"),
        ({"rules_interval": -1.0}, r"rules_interval=-1\.0"),
        ({"service_name": " "}, r"service_name must not be empty"),
    ],
)
def test_bad_arguments_name_the_argument_and_limit(kwargs: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        setup(set_global=False, span_exporter=InMemorySpanExporter(), **kwargs)


def test_bad_env_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in [
        ("TINCT_SAMPLING_ADAPTIVE_PER_SECOND", "fast"),
        ("TINCT_SERVER", "ftp://x"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"),
        ("TINCT_DYE_RULES_INTERVAL", "0"),
    ]:
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=f"^{name}="):
            setup(set_global=False, span_exporter=InMemorySpanExporter())
        monkeypatch.delenv(name)


def test_sampling_from_env_and_the_argument_overriding_it(
    monkeypatch: pytest.MonkeyPatch, handles: list[Tracing]
) -> None:
    monkeypatch.setenv("TINCT_SAMPLING_PROBABILITY", "0")
    handle, exporter = local(handles)
    assert handle.sampler.get_description() == "DyeSampler{probability=0.0}"
    with handle.tracer_provider.get_tracer("t").start_as_current_span("dropped"):
        pass
    handle, exporter = local(handles, sampling_probability=1.0)
    with handle.tracer_provider.get_tracer("t").start_as_current_span("kept"):
        pass
    handle.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["kept"]
    assert dict(exporter.get_finished_spans()[0].attributes or {}) == {
        "tinct.sampling.probability": 1.0
    }

    monkeypatch.setenv("TINCT_SAMPLING_ADAPTIVE_PER_SECOND", "5")
    handle, _ = local(handles)
    assert handle.sampler.get_description() == "DyeSampler{adaptive=5/s}"


def test_default_probability_is_dapper_s(handles: list[Tracing]) -> None:
    handle, _ = local(handles)
    assert handle.sampler.get_description() == f"DyeSampler{{probability={1 / 1024!r}}}"
    assert handle.poller is None


def test_shutdown_flushes_the_batch_and_is_idempotent(handles: list[Tracing]) -> None:
    handle, exporter = local(handles, sampling_probability=1.0)
    tracer = handle.tracer_provider.get_tracer("t")
    for i in range(3):
        with tracer.start_as_current_span(f"op-{i}"):
            pass
    assert exporter.get_finished_spans() == ()  # still in the batch processor's queue
    handle.shutdown()
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["op-0", "op-1", "op-2"]
    handle.shutdown()


def test_static_rules_dye_matching_entry_spans(handles: list[Tracing]) -> None:
    handle, exporter = local(handles, dye_rules=[DyeRule("r1", "user", "", "42")])
    tracer = handle.tracer_provider.get_tracer("t")
    for user in ("41", "42"):
        with tracer.start_as_current_span(
            "GET /x", kind=SpanKind.SERVER, attributes={"enduser.id": user}
        ):
            with tracer.start_as_current_span("child"):
                pass
    handle.force_flush()
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["GET /x", "child"]
    assert {attrs(s)["tinct.dye"] for s in spans} == {"user:42"}


class Capture(BaseHTTPRequestHandler):
    """Records the path and content type of every POST; answers 200 with an empty body."""

    received: list[tuple[str, str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append((self.path, self.headers.get("content-type", "")))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    received: list[tuple[str, str]] = []
    handler = type("Handler", (Capture,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_otlp_http_protobuf_to_the_endpoint_and_the_traces_url_as_is(
    monkeypatch: pytest.MonkeyPatch, collector: tuple[str, list[tuple[str, str]]]
) -> None:
    base, received = collector
    handle = setup(endpoint=base + "/", sampling_probability=1.0, set_global=False)
    with handle.tracer_provider.get_tracer("t").start_as_current_span("one"):
        pass
    handle.shutdown()
    assert received == [("/v1/traces", "application/x-protobuf")]

    received.clear()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # unused: below wins
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", base + "/custom/spans")
    handle = setup(sampling_probability=1.0, set_global=False)
    with handle.tracer_provider.get_tracer("t").start_as_current_span("two"):
        pass
    handle.shutdown()
    assert received == [("/custom/spans", "application/x-protobuf")]


def test_logs_of_dyed_requests_exported_when_asked(
    collector: tuple[str, list[tuple[str, str]]],
) -> None:
    base, received = collector
    app_logger = logging.getLogger("tests.setup.app")
    app_logger.setLevel(logging.WARNING)
    handle = setup(endpoint=base, logs=True, set_global=False, span_exporter=InMemorySpanExporter())
    try:
        assert handle.log_handler is not None
        with dye("user:1"), handle.tracer_provider.get_tracer("t").start_as_current_span("op"):
            app_logger.debug("visible because the request is dyed")
    finally:
        handle.shutdown()
    assert ("/v1/logs", "application/x-protobuf") in received
    assert not is_instrumented()


def test_metrics_export_when_asked(collector: tuple[str, list[tuple[str, str]]]) -> None:
    base, received = collector
    handle = setup(
        endpoint=base, metrics=True, set_global=False, span_exporter=InMemorySpanExporter()
    )
    handle.meter_provider.get_meter("m").create_counter("orders_total").add(1)
    handle.shutdown()
    assert ("/v1/metrics", "application/x-protobuf") in received


# One process per global set-up: OpenTelemetry sets its globals once per process.
_APP = textwrap.dedent(
    """
    import logging, sys, time
    from wsgiref.util import setup_testing_defaults
    from opentelemetry import propagate, trace
    import tinct.tracing
    from tinct.tracing import DyePropagator, TinctWSGIMiddleware

    logging.basicConfig(level=logging.WARNING)
    handle = tinct.tracing.setup("orders", sampling_probability=0.0)  # env: servers
    assert trace.get_tracer_provider() is handle.tracer_provider
    assert isinstance(propagate.get_global_textmap(), DyePropagator)
    deadline = time.monotonic() + 20
    while not handle.matcher.rules:
        assert time.monotonic() < deadline, "no dye rules polled"
        time.sleep(0.05)

    def app(environ, start_response):
        start_response("200 OK", [("content-type", "text/plain")])
        with trace.get_tracer("app").start_as_current_span("work") as span:
            print(format(span.get_span_context().trace_id, "032x"), flush=True)
        return [b"ok"]

    wrapped = TinctWSGIMiddleware(app)
    for user in ("41", "42"):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/orders/7", "HTTP_X_USER_ID": user}
        setup_testing_defaults(environ)
        b"".join(wrapped(environ, lambda status, headers, exc_info=None: None))
    again = tinct.tracing.setup("again", sampling_probability=0.0)
    assert trace.get_tracer_provider() is handle.tracer_provider
    again.shutdown()
    handle.shutdown()
    """
)


@pytest.mark.server
def test_global_setup_against_a_real_tinct(tmp_path: Path) -> None:
    tinct = TinctProcess(tmp_path / "data")
    try:
        tinct.wait_ready()
        r = httpx.post(
            f"{tinct.main}/api/tinct/dye-rules",
            json={"match": {"kind": "user", "value": "42"}, "service": "orders"},
        )
        assert r.status_code == 201, r.text
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": tinct.urls["OTLP/HTTP"].removesuffix("/v1/traces"),
            "TINCT_SERVER": tinct.main,
            "TINCT_DYE_RULES_INTERVAL": "0.1",
        }
        done = subprocess.run(
            [sys.executable, "-c", _APP], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "already set" in done.stderr  # the second setup() said so
        undyed, dyed = done.stdout.split()

        deadline = time.monotonic() + 10
        while True:
            got = httpx.get(f"{tinct.main}/api/traces/{dyed}")
            if got.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert got.status_code == 200, done.stderr + "".join(tinct.lines)
        [trace] = got.json()["data"]
        spans = {s["operationName"]: s for s in trace["spans"]}
        assert set(spans) == {"GET", "work"}
        server_tags = {t["key"]: t["value"] for t in spans["GET"]["tags"]}
        assert server_tags["enduser.id"] == "42" and server_tags["tinct.dye"] == "user:42"
        assert {t["key"]: t["value"] for t in spans["work"]["tags"]}["tinct.dye"] == "user:42"
        assert next(iter(trace["processes"].values()))["serviceName"] == "orders"
        assert httpx.get(f"{tinct.main}/api/traces/{undyed}").status_code == 404
    finally:
        assert tinct.stop() == 0, "".join(tinct.lines)
