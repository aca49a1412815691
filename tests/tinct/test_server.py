"""`tinct up` as a real process: ports from the log, health, metrics, ingest, SIGTERM, restart."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.servers import TinctProcess, stop_pid
from tests.tracing.test_receivers import otlp_request

pytestmark = pytest.mark.server


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[TinctProcess]]:
    procs: list[TinctProcess] = []
    yield procs
    for t in procs:
        stop_pid(t.proc)


def test_up_serves_ingests_and_stops_cleanly(tmp_path: Path, started: list[TinctProcess]) -> None:
    data = tmp_path / "data"
    first = TinctProcess(data)
    started.append(first)
    first.wait_ready()
    assert set(first.urls) == {"UI and APIs", "OTLP/gRPC", "OTLP/HTTP", "Zipkin"}
    # Each URL is logged once, with a real port.
    for what, url in first.urls.items():
        assert sum(what in line and "serving" in line for line in first.lines) == 1
        assert not url.rstrip("/").endswith(":0")
    assert first.urls["OTLP/HTTP"].endswith("/v1/traces")
    assert first.urls["Zipkin"].endswith("/api/v2/spans")

    assert httpx.get(first.main + "/-/healthy").text == "tinct is Healthy.\n"
    assert httpx.get(first.main + "/-/ready").status_code == 200
    r = httpx.post(
        first.urls["OTLP/HTTP"],
        content=otlp_request(1).SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert r.status_code == 200
    trace_url = first.main + "/api/traces/" + "0" * 31 + "1"
    deadline = time.monotonic() + 2
    while (found := httpx.get(trace_url)).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found.status_code == 200, "span not readable within 2 s"
    metrics = httpx.get(first.main + "/metrics").text
    assert 'tinct_receiver_accepted_spans_total{protocol="otlp_http"} 1.0' in metrics
    assert "tinct_writer_pending_rows" in metrics

    # A request in flight when SIGTERM arrives is finished and its span kept.
    in_flight = socket.create_connection(_hostport(first.urls["OTLP/HTTP"]))
    body = in_flight_request().SerializeToString()
    head = (
        "POST /v1/traces HTTP/1.1\r\nHost: tinct\r\nContent-Type: application/x-protobuf\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    in_flight.sendall(head.encode() + body[:10])
    time.sleep(0.2)
    first.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    in_flight.sendall(body[10:])
    assert in_flight.recv(4096).startswith(b"HTTP/1.1 200 ")
    in_flight.close()
    assert first.proc.wait(30) == 0, "".join(first.lines)

    second = TinctProcess(data)
    started.append(second)
    second.wait_ready()
    [trace] = httpx.get(second.main + "/api/traces/1").json()["data"]
    assert trace["spans"][0]["operationName"] == "op0"
    [trace] = httpx.get(second.main + "/api/traces/" + IN_FLIGHT_TRACE).json()["data"]
    assert trace["spans"][0]["operationName"] == "in flight"
    assert second.stop() == 0


IN_FLIGHT_TRACE = "00000000000000000000000000000abc"


def in_flight_request() -> ExportTraceServiceRequest:
    req = otlp_request(1)
    span = req.resource_spans[0].scope_spans[0].spans[0]
    span.trace_id = bytes.fromhex(IN_FLIGHT_TRACE)
    span.name = "in flight"
    return req


def _hostport(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def test_busy_port_exits_1_with_a_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "tinct", "up", "--data", str(tmp_path), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (--port)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_flag_exits_2_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tinct", "up", "--otlp-http-port", "99999"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("tinct: error: --otlp-http-port / TINCT_OTLP_HTTP_PORT: 99999")
