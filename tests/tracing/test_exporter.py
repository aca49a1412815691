"""tinct's span export path: the wire encoder against the SDK's, the exporter and
processor against a real local HTTP server, and the whole path into `tinct up`."""

from __future__ import annotations

import gzip
import http.server
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from tests.otlp_compare import canonical_message, canonical_spans
from tests.servers import TinctProcess
from tinct.tracing.exporter import OtlpHttpSpanExporter, TinctSpanProcessor
from tinct.tracing.otlp_encode_spans import SpanEncoder

EVERY_TYPE: dict[str, Any] = {
    "s": "text",
    "s.empty": "",
    "s.unicode": "ü—😀",
    "b.true": True,
    "b.false": False,
    "i.zero": 0,
    "i.one": 1,
    "i.neg": -1,
    "i.big": 1 << 40,
    "i.min": -(2**63),
    "i.max": 2**63 - 1,
    "f": 1.5,
    "f.neg": -1.5e-7,
    "f.zero": 0.0,
    "f.negzero": -0.0,
    "f.inf": math.inf,
    "f.one": 1.0,
    "seq.s": ["a", "", "ü"],
    "seq.b": [True, False],
    "seq.i": [0, -1, 2**63 - 1, -(2**63)],
    "seq.f": [0.5, -2.0],
    "seq.empty": [],
    "seq.none": ["a", None],
    "long": "x" * 1000,
}


def _recorded(provider: TracerProvider) -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


def _every_feature_spans() -> list[ReadableSpan]:
    """Spans covering every field the OTLP encoders write, from two resources."""
    spans: list[ReadableSpan] = []
    limits = SpanLimits(max_attributes=40, max_events=3, max_links=2)
    main = TracerProvider(
        resource=Resource.create({"service.name": "shop", "host.cpus": 8, "zones": ["a", "b"]}),
        span_limits=limits,
    )
    other = TracerProvider(resource=Resource({"service.name": "other"}, "https://schema/1"))
    memories = [_recorded(main), _recorded(other)]
    scoped = main.get_tracer(
        "tinct.tests", "1.2.3", "https://opentelemetry.io/schemas/1.26.0", {"team": "a", "n": 3}
    )
    bare = main.get_tracer("")
    remote = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "x"), ("ot", "th:8")]),
    )
    local_link = SpanContext(0x1, 0x2, is_remote=False, trace_flags=TraceFlags(1))
    remote_ctx = trace_api.set_span_in_context(NonRecordingSpan(remote))
    token = context_api.attach(remote_ctx)
    try:
        with scoped.start_as_current_span(
            "every type", kind=SpanKind.SERVER, attributes=EVERY_TYPE
        ) as span:
            span.add_event("e1", {"k": "v", "n": 1, "ok": False, "seq": [1.5]})
            span.add_event("e2")
            span.add_event("")
            span.add_event("e4 (one event dropped)", {"x": 1})
            with scoped.start_as_current_span(
                "links",
                kind=SpanKind.CLIENT,
                links=[
                    Link(local_link, {"dropped": "by the limit, oldest first"}),
                    Link(local_link),
                    Link(remote, {"link.kind": "retry-of", "n": 7}),
                ],
            ) as child:
                child.set_status(Status(StatusCode.ERROR, "deadline exceeded"))
                child.set_attributes({f"a{i}": i for i in range(45)})  # 5 dropped
            with bare.start_as_current_span("ok", kind=SpanKind.PRODUCER) as ok:
                ok.set_status(Status(StatusCode.OK))
            with bare.start_as_current_span("consumer", kind=SpanKind.CONSUMER) as consumer:
                consumer.set_status(Status(StatusCode.ERROR))
            with bare.start_as_current_span("internal", attributes={"i.huge": 2**64}):
                pass  # an int outside int64 is left out, as the SDK does
    finally:
        context_api.detach(token)
    with other.get_tracer("other.scope").start_as_current_span("root of another resource"):
        pass
    with other.get_tracer("").start_as_current_span("no scope name"):
        pass
    for memory in memories:
        spans.extend(memory.get_finished_spans())
    # Interleave resources and scopes, as a batch from several providers would be.
    return spans[::2] + spans[1::2]


def _sorted(request: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    """The request with resource and scope groups in a canonical order."""
    out = ExportTraceServiceRequest()
    for rs in sorted(request.resource_spans, key=lambda r: r.SerializeToString(deterministic=True)):
        scopes = sorted(rs.scope_spans, key=lambda s: s.SerializeToString(deterministic=True))
        added = out.resource_spans.add()
        added.CopyFrom(rs)
        del added.scope_spans[:]
        added.scope_spans.extend(scopes)
    return out


def _sdk_request(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    expected = encode_spans(spans)
    # The SDK leaves a link's trace_state out; tinct's encoder sends it (Span.Link field 3).
    links = {(s.context.span_id, i): link for s in spans for i, link in enumerate(s.links)}
    for rs in expected.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                for i, pb_link in enumerate(span.links):
                    state = links[(int.from_bytes(span.span_id, "big"), i)].context.trace_state
                    pb_link.trace_state = ",".join(f"{k}={v}" for k, v in state.items())
    return expected


def test_encoding_equals_the_sdk_encoder() -> None:
    spans = _every_feature_spans()
    assert len(spans) == 7
    encoder = SpanEncoder()
    for _ in range(2):  # the second pass runs from the caches
        mine = ExportTraceServiceRequest.FromString(encoder.encode(spans))
        assert _sorted(mine) == _sorted(_sdk_request(spans))
    # Same grouping: two resources; scopes grouped once each, in first-seen order.
    assert [len(rs.scope_spans) for rs in mine.resource_spans] == [2, 2]
    [links] = [s for ss in mine.resource_spans[0].scope_spans for s in ss.spans if s.links]
    assert links.dropped_links_count == 1 and links.dropped_attributes_count == 5
    assert [link.trace_state for link in links.links] == ["", "vendor=x,ot=th:8"]
    assert [link.flags for link in links.links] == [0x100, 0x300]
    assert sum(len(ss.spans) for rs in mine.resource_spans for ss in rs.scope_spans) == 7


def test_encoding_keeps_equal_python_values_of_different_types_apart() -> None:
    provider = TracerProvider()
    memory = _recorded(provider)
    tracer = provider.get_tracer("t")
    values: list[Any] = [1, True, 1.0, 0, False, 0.0, -0.0, (1,), (True,), (1.0,)]
    for value in values * 2:  # the second round is served from the cache
        with tracer.start_as_current_span("s", attributes={"v": value}):
            pass
    spans = memory.get_finished_spans()
    encoded = SpanEncoder().encode(spans)
    assert ExportTraceServiceRequest.FromString(encoded) == encode_spans(spans)
    [rs] = ExportTraceServiceRequest.FromString(encoded).resource_spans
    doubles = [s.attributes[0].value.double_value for s in rs.scope_spans[0].spans[5:7]]
    assert [math.copysign(1, d) for d in doubles] == [1.0, -1.0]


def test_empty_batch_encodes_to_an_empty_request() -> None:
    assert SpanEncoder().encode([]) == b""


# --- a real HTTP server ---------------------------------------------------------------


class _Capture:
    """What the OTLP endpoint received, and the statuses it answers with in turn."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, str, dict[str, str], bytes]] = []
        self.answers: list[tuple[int, dict[str, str]]] = []  # then 200 forever
        self.lock = threading.Lock()

    def spans(self) -> list[Any]:
        out = []
        for _, _, headers, body in self.requests:
            if headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest.FromString(body)
            out += [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        return out


@pytest.fixture
def endpoint() -> Iterator[tuple[str, _Capture]]:
    capture = _Capture()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with capture.lock:
                capture.requests.append((time.monotonic(), self.path, dict(self.headers), body))
                status, headers = capture.answers.pop(0) if capture.answers else (200, {})
            self.send_response(status)
            for name, value in {"Content-Length": "0", **headers}.items():
                self.send_header(name, value)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", capture
    finally:
        server.shutdown()
        server.server_close()


def _spans(n: int) -> list[ReadableSpan]:
    provider = TracerProvider()
    memory = _recorded(provider)
    tracer = provider.get_tracer("t")
    for i in range(n):
        with tracer.start_as_current_span(f"span {i % 3}", attributes={"i": i}):
            pass
    return list(memory.get_finished_spans())


def test_export_posts_protobuf_to_v1_traces(endpoint: tuple[str, _Capture]) -> None:
    url, capture = endpoint
    exporter = OtlpHttpSpanExporter(url + "/", headers={"Authorization": "Bearer t"})
    spans = _spans(5)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # on the kept-alive connection
    exporter.shutdown()
    [(_, path, headers, body), _] = capture.requests
    assert path == "/v1/traces"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["Authorization"] == "Bearer t"
    assert ExportTraceServiceRequest.FromString(body) == encode_spans(spans)
    assert exporter.exported_spans_total == 10


def test_gzip(endpoint: tuple[str, _Capture]) -> None:
    url, capture = endpoint
    exporter = OtlpHttpSpanExporter(url + "/v1/traces", compression="gzip")
    spans = _spans(3)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert capture.requests[0][2]["Content-Encoding"] == "gzip"
    assert capture.requests[0][1] == "/v1/traces"
    assert ExportTraceServiceRequest.FromString(gzip.decompress(capture.requests[0][3])) == (
        encode_spans(spans)
    )


def test_retries_503_honouring_retry_after_then_succeeds(endpoint: tuple[str, _Capture]) -> None:
    url, capture = endpoint
    capture.answers = [(503, {"Retry-After": "0.3"}), (429, {})]
    exporter = OtlpHttpSpanExporter(url, backoff_seconds=0.01)
    assert exporter.export(_spans(4)) == SpanExportResult.SUCCESS
    times = [r[0] for r in capture.requests]
    assert len(times) == 3 and len({r[3] for r in capture.requests}) == 1
    assert times[1] - times[0] >= 0.25  # Retry-After, not the 10 ms backoff
    assert exporter.retries_total == 2 and exporter.failed_requests_total == 2
    assert exporter.exported_spans_total == 4 and exporter.failed_spans_total == 0


def test_gives_up_after_max_retries_and_counts(endpoint: tuple[str, _Capture]) -> None:
    url, capture = endpoint
    capture.answers = [(503, {})] * 10
    exporter = OtlpHttpSpanExporter(url, max_retries=2, backoff_seconds=0)
    assert exporter.export(_spans(4)) == SpanExportResult.FAILURE
    assert len(capture.requests) == 3
    assert exporter.failed_spans_total == 4 and exporter.retries_total == 2
    # Not retryable: one attempt.
    capture.answers = [(400, {})]
    assert exporter.export(_spans(1)) == SpanExportResult.FAILURE
    assert len(capture.requests) == 4 and exporter.failed_spans_total == 5


def test_unreachable_endpoint_fails_without_raising() -> None:
    from tests.servers import free_port

    exporter = OtlpHttpSpanExporter(f"http://127.0.0.1:{free_port()}", max_retries=1)
    exporter._backoff = 0
    assert exporter.export(_spans(2)) == SpanExportResult.FAILURE
    assert exporter.failed_spans_total == 2 and exporter.retries_total == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"endpoint": "localhost:4318"}, {"endpoint": "ftp://h"}, {"compression": "br"}],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        OtlpHttpSpanExporter(**kwargs)


def test_processor_shutdown_flushes_everything(endpoint: tuple[str, _Capture]) -> None:
    url, capture = endpoint
    provider = TracerProvider()
    processor = TinctSpanProcessor(
        OtlpHttpSpanExporter(url), max_export_batch_size=100, schedule_delay_seconds=60
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for i in range(1050):
        with tracer.start_as_current_span("s", attributes={"i": i}):
            pass
    provider.shutdown()
    assert sorted(s.attributes[0].value.int_value for s in capture.spans()) == list(range(1050))
    assert processor.exported_spans_total == 1050 and processor.dropped_spans_total == 0
    # Full batches went out on size, the remainder at shutdown.
    assert len(capture.requests) == 11


def test_processor_force_flush_and_schedule_delay(endpoint: tuple[str, _Capture]) -> None:
    url, capture = endpoint
    provider = TracerProvider()
    provider.add_span_processor(
        TinctSpanProcessor(OtlpHttpSpanExporter(url), schedule_delay_seconds=0.05)
    )
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("timed"):
        pass
    deadline = time.monotonic() + 5
    while not capture.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [s.name for s in capture.spans()] == ["timed"]
    with tracer.start_as_current_span("flushed"):
        pass
    assert provider.force_flush()
    assert [s.name for s in capture.spans()] == ["timed", "flushed"]
    provider.shutdown()


class _BlockedExporter(SpanExporter):
    """Holds the worker inside ``export`` until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.entered.set()
        self.release.wait(10)
        self.spans += spans
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def test_processor_full_queue_drops_and_counts() -> None:
    exporter = _BlockedExporter()
    processor = TinctSpanProcessor(exporter, max_queue_size=10, max_export_batch_size=5)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for _ in range(5):
        with tracer.start_as_current_span("first batch"):
            pass
    assert exporter.entered.wait(5)  # the worker holds those 5 in export
    for _ in range(15):
        with tracer.start_as_current_span("queued"):
            pass
    assert processor.dropped_spans_total == 5
    exporter.release.set()
    provider.shutdown()
    assert len(exporter.spans) == 15 and processor.exported_spans_total == 15


class _RaisingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.calls += 1
        raise RuntimeError("exporter bug")

    def shutdown(self) -> None:
        raise RuntimeError("shutdown bug")


def test_processor_survives_a_raising_exporter(caplog: pytest.LogCaptureFixture) -> None:
    exporter = _RaisingExporter()
    processor = TinctSpanProcessor(exporter, max_export_batch_size=2)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for _ in range(5):
        with tracer.start_as_current_span("s"):
            pass
    assert provider.force_flush()
    provider.shutdown()
    assert exporter.calls == 3 and processor.failed_spans_total == 5
    assert "span exporter raised" in caplog.text


def test_processor_skips_unsampled_and_refuses_bad_sizes() -> None:
    exporter = InMemorySpanExporter()
    processor = TinctSpanProcessor(exporter)
    span = _spans(1)[0]
    unsampled = SpanContext(span.context.trace_id, span.context.span_id, False, TraceFlags(0))
    processor.on_end(ReadableSpan("x", context=unsampled))
    processor.on_end(span)
    assert processor.force_flush()
    assert exporter.get_finished_spans() == (span,)
    processor.shutdown()
    with pytest.raises(ValueError):
        TinctSpanProcessor(exporter, max_queue_size=10, max_export_batch_size=20)


# --- end to end against `tinct up` ---------------------------------------------------


@pytest.fixture(scope="module")
def tinct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinctProcess]:
    proc = TinctProcess(Path(tmp_path_factory.mktemp("tinct-exporter")))
    proc.wait_ready()
    try:
        yield proc
    finally:
        assert proc.stop() == 0, "".join(proc.lines)


@pytest.mark.server
@pytest.mark.parametrize("compression", [None, "gzip"])
def test_spans_read_back_identical_from_tinct(tinct: TinctProcess, compression: str | None) -> None:
    from tests.tracing.test_otel_sdk_e2e import RESOURCE, _make_spans, _poll

    provider = TracerProvider(resource=Resource.create(RESOURCE))
    memory = _recorded(provider)
    exporter = OtlpHttpSpanExporter(tinct.urls["OTLP/HTTP"], compression=compression)
    processor = TinctSpanProcessor(exporter)
    provider.add_span_processor(processor)
    _make_spans(provider)
    provider.shutdown()
    assert processor.exported_spans_total == 3 and exporter.failed_spans_total == 0

    spans = memory.get_finished_spans()
    trace_id = format(spans[0].context.trace_id, "032x")
    v3 = _poll(f"{tinct.main}/api/v3/traces/{trace_id}")
    assert v3.status_code == 200, v3.text
    stored = canonical_spans(v3.json()["result"])
    assert stored == canonical_message(encode_spans(spans))
    assert stored == canonical_message(
        ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans))
    )
