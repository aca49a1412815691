"""App-side cost of tinct's span pipeline beside the OpenTelemetry SDK: ``python -m bench.spans``.

Two figures, each printed beside its baseline from the same run:

* **unsampled span**: wall µs per ``with tracer.start_as_current_span("x",
  attributes={...})`` that the sampler drops — a root, and a child under an
  unsampled parent (the common case inside an unsampled request). tinct is
  ``DyeSampler(0)`` + ``DyeSpanProcessor``; the baselines are the SDK with
  ``ALWAYS_OFF`` and with ``ParentBased(TraceIdRatioBased(0))``. Goal ≤ 1.0 ×.
* **sampled span, exported**: process CPU µs (``time.process_time``, so the
  batch worker thread counts) per span from the first span until
  ``force_flush`` returns, with ``BatchSpanProcessor`` + ``OTLPSpanExporter``
  (HTTP protobuf) posting to a dummy OTLP endpoint that runs in a *separate
  process* (its CPU is not the app's). Each trace is a SERVER span and four
  database spans, so one span in five is a root carrying
  ``tinct.sampling.probability``. Two tinct rows, both with
  ``DyeSampler(1.0)`` + ``DyeSpanProcessor``: one exporting through tinct's
  own ``TinctSpanProcessor`` + ``OtlpHttpSpanExporter`` (the issue's goal:
  ≤ 0.5 ×), one on the SDK's export pipeline (what tinct's sampling pieces
  cost on their own).

Each setup runs ``--repeat`` times, interleaved with its baseline so machine
noise hits both alike; the best run counts.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from tinct.tracing.exporter import OtlpHttpSpanExporter, TinctSpanProcessor
from tinct.tracing.processors import DyeSpanProcessor
from tinct.tracing.sampler import DyeSampler

# Attributes of a typical HTTP server span (OpenTelemetry semantic conventions).
ATTRIBUTES: dict[str, Any] = {
    "http.request.method": "GET",
    "http.route": "/orders/{id}",
    "url.path": "/orders/1234",
    "url.scheme": "https",
    "server.address": "shop.example.com",
    "server.port": 443,
    "client.address": "10.1.2.3",
    "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
    "http.response.status_code": 200,
}

DB_ATTRIBUTES: dict[str, Any] = {
    "db.system.name": "postgresql",
    "db.operation.name": "SELECT",
    "db.collection.name": "orders",
    "db.query.text": "SELECT * FROM orders WHERE id = $1",
    "server.address": "db.internal",
    "server.port": 5432,
}

# A dummy OTLP/HTTP endpoint: reads each request and answers 200 with an empty
# ExportTraceServiceResponse (whose protobuf encoding is zero bytes).
_SINK = r"""
import http.server, sys

class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def _tinct_unsampled() -> TracerProvider:
    provider = TracerProvider(sampler=DyeSampler(0.0))
    provider.add_span_processor(DyeSpanProcessor())
    return provider


def _sdk(sampler: Sampler) -> Callable[[], TracerProvider]:
    return lambda: TracerProvider(sampler=sampler)


def _unsampled_us(make: Callable[[], TracerProvider], spans: int, nested: bool) -> float:
    provider = make()
    tracer = provider.get_tracer("bench")
    attributes = ATTRIBUTES
    try:
        if nested:
            with tracer.start_as_current_span("request"):
                start = time.perf_counter()
                for _ in range(spans):
                    with tracer.start_as_current_span("x", attributes=attributes):
                        pass
                elapsed = time.perf_counter() - start
        else:
            start = time.perf_counter()
            for _ in range(spans):
                with tracer.start_as_current_span("x", attributes=attributes):
                    pass
            elapsed = time.perf_counter() - start
    finally:
        provider.shutdown()
    return elapsed / spans * 1e6


def _exported_cpu_us(url: str, spans: int, setup: str) -> float:
    """``setup``: "sdk" (plain SDK), "dye" (tinct's sampler and processor on the
    SDK's export pipeline) or "tinct" (those plus tinct's processor/exporter)."""
    if setup == "sdk":
        provider = TracerProvider()  # the SDK default, ParentBased(ALWAYS_ON)
    else:
        provider = TracerProvider(sampler=DyeSampler(1.0))
        provider.add_span_processor(DyeSpanProcessor())
    # A queue that holds every span, so none is dropped (a drop would save the
    # exporter's work and flatter the figure).
    if setup == "tinct":
        provider.add_span_processor(
            TinctSpanProcessor(OtlpHttpSpanExporter(url), max_queue_size=spans + 1024)
        )
    else:
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=url), max_queue_size=spans + 1024)
        )
    tracer = provider.get_tracer("bench")
    try:
        for _ in range(600):  # warm-up: connection, encoder caches
            with tracer.start_as_current_span("warm", attributes=ATTRIBUTES):
                pass
        provider.force_flush()
        traces = spans // 5
        start = time.process_time()
        for _ in range(traces):
            with tracer.start_as_current_span(
                "GET /orders/{id}", kind=SpanKind.SERVER, attributes=ATTRIBUTES
            ):
                for _ in range(4):
                    with tracer.start_as_current_span("SELECT orders", attributes=DB_ATTRIBUTES):
                        pass
        provider.force_flush()
        return (time.process_time() - start) / (traces * 5) * 1e6
    finally:
        provider.shutdown()


def _best(runs: list[Callable[[], float]], repeat: int) -> list[float]:
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            best[i] = min(best[i], run())
    return best


def _line(what: str, value: float, baseline: str, base: float, unit: str) -> None:
    print(
        f"{what:<34}{value:>8.2f} {unit}   {baseline:<34}{base:>8.2f} {unit}"
        f"   ratio {value / base:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--unsampled", type=int, default=100_000, help="spans per timed run")
    parser.add_argument("--sampled", type=int, default=20_000, help="spans per timed run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per setup; the best counts")
    args = parser.parse_args()

    print("unsampled span, wall µs per `with start_as_current_span(...)` (goal ratio ≤ 1.0)")
    for nested, label in ((False, "root"), (True, "child of unsampled")):
        n = args.unsampled
        makers = (_tinct_unsampled, _sdk(ALWAYS_OFF), _sdk(ParentBased(TraceIdRatioBased(0.0))))
        tinct, off, ratio0 = _best(
            [partial(_unsampled_us, make, n, nested) for make in makers], args.repeat
        )
        _line(f"tinct DyeSampler(0), {label}", tinct, "SDK ALWAYS_OFF", off, "µs")
        _line(f"tinct DyeSampler(0), {label}", tinct, "SDK ParentBased(Ratio(0))", ratio0, "µs")

    sink = subprocess.Popen(
        [sys.executable, "-c", _SINK], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert sink.stdout is not None
        url = f"http://127.0.0.1:{int(sink.stdout.readline())}/v1/traces"
        n = args.sampled
        tinct, dye, sdk = _best(
            [partial(_exported_cpu_us, url, n, setup) for setup in ("tinct", "dye", "sdk")],
            args.repeat,
        )
        print("sampled span incl. OTLP/HTTP export, app CPU µs per span (issue goal ≤ 0.5 ×)")
        _line("tinct proc+exporter, Dye*", tinct, "SDK batch+OTLP, default sampler", sdk, "µs")
        _line(
            "SDK batch+OTLP, DyeSampler+DyeProc", dye, "SDK batch+OTLP, default sampler", sdk, "µs"
        )
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
