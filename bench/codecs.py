"""Throughput of the span codecs on one core: ``python -m bench.codecs``.

Each request holds 1,000 realistic spans (see ``realistic_request``) and every
timed call gets a request it has not seen, so attribute values that differ per
span (url.path, client.address) miss the decoder's cache as they would in
production. Reports the mean over all calls, with the garbage collector on.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.tracing._codec_samples import realistic_request
from tinct.tracing.jaeger_json import encode_trace
from tinct.tracing.otlp_decode import decode_json, decode_protobuf, decode_request
from tinct.tracing.otlp_encode import encode_traces_data


def _json_body(req: Any) -> bytes:
    doc = json_format.MessageToDict(req)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return json.dumps(doc).encode()


def _rate(fn: Callable[[Any], object], inputs: list[Any], spans: int) -> float:
    fn(inputs[0])  # warm-up: imports, descriptor pool, first-use caches
    start = time.perf_counter()
    for item in inputs[1:]:
        fn(item)
    return spans * (len(inputs) - 1) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--spans", type=int, default=1000)
    args = parser.parse_args()
    reqs = [realistic_request(args.spans, seed=s) for s in range(args.requests)]
    bodies = [r.SerializeToString() for r in reqs]
    n = args.spans
    # Each codec beside a baseline from the same run: the library work it
    # cannot avoid (protobuf's C parser; json.loads; json.dumps of its output).
    parse = ExportTraceServiceRequest.FromString
    _line(
        "decode_protobuf",
        _rate(decode_protobuf, bodies, n),
        "protobuf parse",
        _rate(parse, bodies, n),
    )
    _line(
        "decode_request", _rate(decode_request, reqs, n), "protobuf parse", _rate(parse, bodies, n)
    )
    few = max(3, args.requests // 8)
    json_bodies = [_json_body(r) for r in reqs[:few]]
    _line(
        "decode_json",
        _rate(decode_json, json_bodies, n),
        "json.loads",
        _rate(json.loads, json_bodies, n),
    )
    rows = [decode_protobuf(b).batch.to_pylist() for b in bodies[:few]]
    otlp = [encode_traces_data(r) for r in rows]
    jaeger = [encode_trace(r) for r in rows]
    _line(
        "encode_traces_data",
        _rate(encode_traces_data, rows, n),
        "json.dumps of it",
        _rate(json.dumps, otlp, n),
    )
    _line(
        "jaeger encode",
        _rate(encode_trace, rows, n),
        "json.dumps of it",
        _rate(json.dumps, jaeger, n),
    )


def _line(what: str, rate: float, baseline: str, base_rate: float) -> None:
    print(
        f"{what:<19}{rate:>10,.0f} spans/s   {baseline:<17}{base_rate:>11,.0f} spans/s"
        f"   ratio {rate / base_rate:.2f}"
    )


if __name__ == "__main__":
    main()
