"""Bad input against a running `tinct up`: refused clearly, nothing accepted lost.

Each test sends broken requests (truncated or random protobuf, malformed or
misshapen JSON, wrong media type, oversized bodies, a gzip bomb, a lying
Content-Encoding, batches mixing valid and invalid spans) between good ones
carrying distinct known spans, and checks every error answer names its
problem. The last test checks the process is still healthy and bounded in
memory, counted what it refused, and that every span it accepted reads back
whole through ``/api/v3/traces/{id}``, before and after a SIGTERM and restart
on the same data folder.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from prometheus_client.parser import text_string_to_metric_families

from tests.otlp_compare import canonical_message, canonical_spans
from tests.servers import TinctProcess

pytestmark = pytest.mark.server

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
MIB = 1024 * 1024
RSS_LIMIT_BYTES = 600 * MIB
_GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
# Spans start a minute before the module loads: recent, and in the past.
_START_NS = time.time_ns() - 60 * 10**9


# --- Known spans ------------------------------------------------------------


def _kv(key: str, value: str | int | float | bool) -> KeyValue:
    if isinstance(value, bool):
        any_value = AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = AnyValue(int_value=value)
    elif isinstance(value, float):
        any_value = AnyValue(double_value=value)
    else:
        any_value = AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


@dataclass
class Ledger:
    """Numbers spans so no two share an id; remembers what tinct accepted."""

    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    # trace id (hex) -> the spans of it tinct accepted, as a request.
    accepted: dict[str, ExportTraceServiceRequest] = field(default_factory=dict)
    # protocol label -> spans tinct should have refused.
    refused: dict[str, int] = field(default_factory=dict)
    zipkin_spans: dict[str, tuple[str, str]] = field(default_factory=dict)  # span -> trace, name

    def trace_id(self) -> bytes:
        return bytes.fromhex(f"ba d1 {next(self.numbers):028x}".replace(" ", ""))

    def spans(self, trace_id: bytes, count: int, label: str) -> list[Span]:
        """``count`` spans of one trace (a root and its children), attributes of each type."""
        spans: list[Span] = []
        for i in range(count):
            n = next(self.numbers)
            start = _START_NS + n * 1_000_000
            span = Span(
                trace_id=trace_id,
                span_id=n.to_bytes(8, "big"),
                parent_span_id=spans[0].span_id if spans else b"",
                name=f"{label} {i}",
                kind=Span.SPAN_KIND_SERVER if i == 0 else Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=start,
                end_time_unix_nano=start + 1500 + n,
                attributes=[
                    _kv("label", label),
                    _kv("n", n),
                    _kv("ratio", n / 8),
                    _kv("ok", i % 2 == 0),
                ],
                status=Status(code=Status.STATUS_CODE_OK)
                if i == 0
                else Status(code=Status.STATUS_CODE_ERROR, message=f"failure {n}"),
            )
            span.events.add(time_unix_nano=start + 10, name="checkpoint", attributes=[_kv("i", i)])
            spans.append(span)
        return spans

    def request(self, groups: list[list[Span]]) -> ExportTraceServiceRequest:
        """One resource and scope holding ``groups`` of spans."""
        scope = ScopeSpans(
            scope=InstrumentationScope(name="tests.bad_input", version="1.0"),
            spans=[s for group in groups for s in group],
        )
        resource = Resource(attributes=[_kv("service.name", "bad-input-e2e"), _kv("pid", 7)])
        return ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(resource=resource, scope_spans=[scope])]
        )

    def good(self, count: int = 3, label: str = "good") -> ExportTraceServiceRequest:
        trace_id = self.trace_id()
        return self.request([self.spans(trace_id, count, label)])

    def accept(self, request: ExportTraceServiceRequest) -> None:
        """Record that tinct accepted every span of ``request``."""
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    trace = self.accepted.setdefault(span.trace_id.hex(), _empty_like(rs, ss))
                    trace.resource_spans[0].scope_spans[0].spans.append(span)

    def refuse(self, protocol: str, count: int) -> None:
        self.refused[protocol] = self.refused.get(protocol, 0) + count


def _empty_like(rs: ResourceSpans, ss: ScopeSpans) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(resource=rs.resource, scope_spans=[ScopeSpans(scope=ss.scope)])
        ]
    )


def _otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON of ``request``: protobuf's JSON mapping with hex ids."""

    def hexed(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex()
                if k in ("traceId", "spanId", "parentSpanId")
                else hexed(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [hexed(v) for v in node]
        return node

    return hexed(json_format.MessageToDict(request))  # type: ignore[no-any-return]


# --- The server -------------------------------------------------------------


@dataclass
class Session:
    data: Path
    proc: TinctProcess
    ledger: Ledger
    http: httpx.Client

    @property
    def otlp(self) -> str:
        return self.proc.urls["OTLP/HTTP"]

    @property
    def zipkin(self) -> str:
        return self.proc.urls["Zipkin"]

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/<pid>/status")

    def send_good(self, encoding: str = "protobuf", count: int = 3) -> None:
        """A good OTLP/HTTP request (or gRPC); its spans must be accepted."""
        request = self.ledger.good(count, f"good {encoding}")
        if encoding == "grpc":
            response = _grpc_export(self, request.SerializeToString())
            assert not response.HasField("partial_success"), response
        elif encoding == "json":
            answer = self.http.post(self.otlp, json=_otlp_json(request), headers=JSON)
            assert answer.status_code == 200, answer.text
            assert "partialSuccess" not in answer.json(), answer.text
        else:
            answer = self.http.post(
                self.otlp, content=request.SerializeToString(), headers=PROTOBUF
            )
            assert answer.status_code == 200, answer.content
            assert not ExportTraceServiceResponse.FromString(answer.content).HasField(
                "partial_success"
            )
        self.ledger.accept(request)


def _start(data: Path) -> TinctProcess:
    proc = TinctProcess(data)
    proc.wait_ready()
    return proc


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    data = Path(tmp_path_factory.mktemp("bad-input"))
    with httpx.Client(timeout=30) as http:
        s = Session(data, _start(data), Ledger(), http)
        try:
            yield s
        finally:
            assert s.proc.stop() == 0, "".join(s.proc.lines)


def _grpc_export(session: Session, body: bytes) -> ExportTraceServiceResponse:
    """Export raw request bytes over OTLP/gRPC (so broken bodies can be sent too)."""
    target = session.proc.urls["OTLP/gRPC"].removeprefix("http://")
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            _GRPC_METHOD,
            request_serializer=lambda b: b,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        return call(body, timeout=10)  # type: ignore[no-any-return]


def _status(response: httpx.Response) -> status_pb2.Status:
    """The google.rpc.Status an OTLP/HTTP error carries, in the response's encoding."""
    if response.headers["content-type"].startswith("application/json"):
        return json_format.Parse(response.text, status_pb2.Status())
    return status_pb2.Status.FromString(response.content)


def _assert_refused(
    response: httpx.Response, http_status: int, code: int, *words: str
) -> status_pb2.Status:
    assert response.status_code == http_status, (response.status_code, response.content[:300])
    status = _status(response)
    assert status.code == code, status
    for word in words:
        assert word.lower() in status.message.lower(), (word, status.message)
    return status


# --- Broken bodies ----------------------------------------------------------


def test_truncated_protobuf(session: Session) -> None:
    session.send_good()
    whole = session.ledger.good().SerializeToString()
    for cut in (len(whole) // 2, len(whole) - 1, 3):
        response = session.http.post(session.otlp, content=whole[:cut], headers=PROTOBUF)
        _assert_refused(
            response, 400, code_pb2.INVALID_ARGUMENT, "not a valid ExportTraceServiceRequest"
        )
    session.send_good("json")


def test_random_bytes_as_protobuf(session: Session) -> None:
    rng = random.Random(20240601)
    for size in (1, 64, 4096):
        junk = rng.randbytes(size)
        response = session.http.post(session.otlp, content=junk, headers=PROTOBUF)
        _assert_refused(response, 400, code_pb2.INVALID_ARGUMENT, "ExportTraceServiceRequest")
        session.send_good()


def test_malformed_json(session: Session) -> None:
    good = json.dumps(_otlp_json(session.ledger.good())).encode()
    for body in (good[: len(good) // 2], b"{", b"\xff\xfe not utf-8", b""):
        response = session.http.post(session.otlp, content=body, headers=JSON)
        _assert_refused(response, 400, code_pb2.INVALID_ARGUMENT, "JSON")
        assert response.headers["content-type"].startswith("application/json")
    session.send_good("json")


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ([{"resourceSpans": []}], ("must be an object", "list")),
        ("resourceSpans", ("must be an object", "str")),
        ({"resourceSpans": {"scopeSpans": []}}, ("must be a list",)),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [7]}]}]}, ("must be an object",)),
        (
            {"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]},
            ("must be an integer",),
        ),
    ],
    ids=["list", "string", "resourceSpans-object", "span-number", "time-text"],
)
def test_json_of_the_wrong_shape(session: Session, doc: Any, words: tuple[str, ...]) -> None:
    response = session.http.post(session.otlp, json=doc, headers=JSON)
    _assert_refused(response, 400, code_pb2.INVALID_ARGUMENT, *words)
    session.send_good("json", count=1)


def test_wrong_content_type(session: Session) -> None:
    body = session.ledger.good().SerializeToString()
    for media in ("text/plain", "application/xml", ""):
        response = session.http.post(session.otlp, content=body, headers={"Content-Type": media})
        _assert_refused(
            response, 415, code_pb2.INVALID_ARGUMENT, "Content-Type", "application/x-protobuf"
        )
    session.send_good()


def test_unknown_content_encoding(session: Session) -> None:
    body = session.ledger.good().SerializeToString()
    headers = {**PROTOBUF, "Content-Encoding": "br"}
    response = session.http.post(session.otlp, content=body, headers=headers)
    _assert_refused(response, 415, code_pb2.INVALID_ARGUMENT, "Content-Encoding", "br")
    session.send_good()


# --- Size limits ------------------------------------------------------------


def test_oversized_body(session: Session) -> None:
    big = bytes(21 * MIB)
    response = session.http.post(session.otlp, content=big, headers=PROTOBUF)
    _assert_refused(response, 413, code_pb2.RESOURCE_EXHAUSTED, "larger than", str(20 * MIB))
    session.send_good()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(21):
            yield bytes(MIB)

    response = session.http.post(session.otlp, content=chunks(), headers=JSON)
    _assert_refused(response, 413, code_pb2.RESOURCE_EXHAUSTED, "larger than", str(20 * MIB))
    session.send_good("json")
    assert session.rss_bytes() < RSS_LIMIT_BYTES


def _gzip_bomb(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MIB)
    return b"".join(packer.compress(block) for _ in range(size // MIB)) + packer.flush()


def test_gzip_bomb(session: Session) -> None:
    bomb = _gzip_bomb(200 * MIB)
    assert len(bomb) < MIB  # small on the wire, 200 MiB inflated
    for headers in ({**PROTOBUF, "Content-Encoding": "gzip"}, {**JSON, "Content-Encoding": "gzip"}):
        response = session.http.post(session.otlp, content=bomb, headers=headers)
        _assert_refused(
            response, 413, code_pb2.RESOURCE_EXHAUSTED, "larger than", "after decompression"
        )
        assert session.rss_bytes() < RSS_LIMIT_BYTES
        session.send_good()
    zipkin = session.http.post(
        session.zipkin, content=bomb, headers={**JSON, "Content-Encoding": "gzip"}
    )
    assert zipkin.status_code == 413
    assert "after decompression" in zipkin.text
    assert session.rss_bytes() < RSS_LIMIT_BYTES


def test_gzip_claimed_plain_body(session: Session) -> None:
    plain = session.ledger.good().SerializeToString()
    headers = {**PROTOBUF, "Content-Encoding": "gzip"}
    response = session.http.post(session.otlp, content=plain, headers=headers)
    _assert_refused(response, 400, code_pb2.INVALID_ARGUMENT, "gzip", "corrupt")
    truncated = zlib.compress(plain, wbits=16 + zlib.MAX_WBITS)[:-12]
    response = session.http.post(session.otlp, content=truncated, headers=headers)
    _assert_refused(response, 400, code_pb2.INVALID_ARGUMENT, "gzip", "truncated")
    # The same bytes, honestly gzipped, are fine.
    honest = session.ledger.good()
    body = zlib.compress(honest.SerializeToString(), wbits=16 + zlib.MAX_WBITS)
    response = session.http.post(session.otlp, content=body, headers=headers)
    assert response.status_code == 200, response.content
    session.ledger.accept(honest)


# --- Batches mixing valid and invalid spans ---------------------------------


def _mixed(ledger: Ledger) -> tuple[ExportTraceServiceRequest, ExportTraceServiceRequest]:
    """A request whose spans 0-1 and 4 are valid, 2 (15-byte trace id) and 3 (zero span id) not.

    Returns the request and the part of it that must be accepted.
    """
    trace_id = ledger.trace_id()
    valid = ledger.spans(trace_id, 3, "mixed")
    short_trace = ledger.spans(trace_id[:15], 1, "short trace id")[0]
    zero_span = ledger.spans(trace_id, 1, "zero span id")[0]
    zero_span.span_id = bytes(8)
    request = ledger.request([valid[:2], [short_trace, zero_span], valid[2:]])
    return request, ledger.request([valid])


def test_mixed_batch_protobuf(session: Session) -> None:
    request, valid = _mixed(session.ledger)
    response = session.http.post(
        session.otlp, content=request.SerializeToString(), headers=PROTOBUF
    )
    assert response.status_code == 200, response.content
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 2
    message = answer.partial_success.error_message
    assert "span 2 of scope 0 of resource 0: trace_id must be 16 bytes, got 15" in message
    assert "span 3 of scope 0 of resource 0: span_id must not be all zeros" in message
    session.ledger.accept(valid)
    session.ledger.refuse("otlp_http", 2)
    session.send_good()


def test_mixed_batch_json(session: Session) -> None:
    request, valid = _mixed(session.ledger)
    doc = _otlp_json(request)
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[3]["spanId"] = "zz" + spans[4]["spanId"][2:]  # bad hex (was all zeros)
    spans.append({**spans[0], "spanId": "0123456789abcdeg", "name": "bad hex"})
    response = session.http.post(session.otlp, json=doc, headers=JSON)
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 3
    message = partial["errorMessage"]
    assert "span 2 of scope 0 of resource 0: trace_id must be 16 bytes, got 15" in message
    assert 'span 3 of scope 0 of resource 0: span_id is not a hex string: "zz' in message
    assert "span 5 of scope 0 of resource 0: span_id is not a hex string" in message
    session.ledger.accept(valid)
    session.ledger.refuse("otlp_http", 3)
    session.send_good("json")


def test_mixed_batch_grpc(session: Session) -> None:
    request, valid = _mixed(session.ledger)
    answer = _grpc_export(session, request.SerializeToString())
    assert answer.partial_success.rejected_spans == 2
    assert "trace_id must be 16 bytes, got 15" in answer.partial_success.error_message
    assert "span_id must not be all zeros" in answer.partial_success.error_message
    session.ledger.accept(valid)
    session.ledger.refuse("otlp_grpc", 2)
    session.send_good("grpc")


def test_grpc_garbage(session: Session) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        _grpc_export(session, session.ledger.good().SerializeToString()[:-5])
    error: Any = failed.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid ExportTraceServiceRequest" in error.details()
    session.send_good("grpc")


# --- Zipkin -----------------------------------------------------------------


def _zipkin_span(ledger: Ledger, name: str, **overrides: Any) -> dict[str, Any]:
    n = next(ledger.numbers)
    return {
        "traceId": f"ba d2 {n:028x}".replace(" ", ""),
        "id": f"{n:016x}",
        "name": name,
        "kind": "SERVER",
        "timestamp": _START_NS // 1000 + n,
        "duration": 1500,
        "localEndpoint": {"serviceName": "bad-input-zipkin"},
        "tags": {"label": name},
        **overrides,
    }


def test_zipkin_bad_json(session: Session) -> None:
    good = _zipkin_span(session.ledger, "zipkin good")
    for body, words in (
        (b'[{"traceId": ', ("not valid JSON",)),
        (b'{"traceId": "1"}', ("must be a list", "dict")),
    ):
        response = session.http.post(session.zipkin, content=body, headers=JSON)
        assert response.status_code == 400, response.text
        for word in words:
            assert word in response.text, response.text
    bad = _zipkin_span(session.ledger, "zipkin bad", id="not hex!")
    response = session.http.post(session.zipkin, json=[good, bad], headers=JSON)
    assert response.status_code == 202, response.text
    session.ledger.zipkin_spans[good["id"]] = (good["traceId"], "zipkin good")
    session.ledger.refuse("zipkin", 1)
    session.send_good()


# --- Afterwards ---------------------------------------------------------------


def _read_back(main: str, ledger: Ledger, timeout: float = 10) -> None:
    """Every accepted span reads back whole through /api/v3/traces/{id}."""
    deadline = time.monotonic() + timeout
    for trace_id, expected in ledger.accepted.items():
        while True:
            response = httpx.get(f"{main}/api/v3/traces/{trace_id}")
            got = canonical_spans(response.json()["result"]) if response.status_code == 200 else {}
            if got == canonical_message(expected) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert response.status_code == 200, (trace_id, response.text)
        assert got == canonical_message(expected), trace_id
    for span_id, (trace_id, name) in ledger.zipkin_spans.items():
        response = httpx.get(f"{main}/api/v3/traces/{trace_id}")
        assert response.status_code == 200, (trace_id, response.text)
        spans = [
            s
            for rs in response.json()["result"]["resourceSpans"]
            for ss in rs["scopeSpans"]
            for s in ss["spans"]
        ]
        assert [(s["spanId"].lower(), s["name"]) for s in spans] == [(span_id, name)]


def _counter(main: str, name: str) -> dict[str, float]:
    text = httpx.get(f"{main}/metrics").text
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return {s.labels["protocol"]: s.value for s in family.samples}
    raise AssertionError(f"{name} not in /metrics")


def test_zz_still_serving_and_nothing_accepted_lost(session: Session) -> None:
    """Runs last: health, metrics, memory, then every accepted span across a restart."""
    main = session.proc.main
    assert httpx.get(f"{main}/-/healthy").status_code == 200
    session.send_good()
    session.send_good("json")
    session.send_good("grpc")
    assert session.rss_bytes() < RSS_LIMIT_BYTES

    refused = _counter(main, "tinct_receiver_refused_spans")
    for protocol, count in session.ledger.refused.items():
        assert refused[protocol] == count, (protocol, refused)
    accepted = _counter(main, "tinct_receiver_accepted_spans")
    accepted_spans = sum(
        len(ss.spans)
        for request in session.ledger.accepted.values()
        for rs in request.resource_spans
        for ss in rs.scope_spans
    )
    assert sum(accepted.values()) == accepted_spans + len(session.ledger.zipkin_spans)
    assert accepted_spans >= 30

    _read_back(main, session.ledger)
    # Accepted just before SIGTERM, likely still in the writer's queue: flushed on stop.
    session.send_good("json")
    session.send_good("grpc")
    assert session.proc.stop() == 0, "".join(session.proc.lines)
    session.proc = _start(session.data)
    _read_back(session.proc.main, session.ledger, timeout=0)
