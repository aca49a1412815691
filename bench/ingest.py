"""End-to-end ingest benchmark: OTLP/HTTP protobuf into `tinct up`, with its ceiling.

Run with ``make bench`` (or ``python -m bench.ingest --help``). Figures, all
from the same run so that machine noise hits them alike:

* **end to end**: this process, pinned to core 0, posts OTLP/HTTP protobuf
  requests of 1,000 realistic spans (bench.workload) over keep-alive
  connections to `tinct up` pinned to core 1. *accepted* is spans/s answered
  200 without rejections; *stored* is spans/s until the server's writer
  reports every accepted span written. After SIGTERM the store is opened and
  its span count must equal the accepted count (all readable).
* **ceiling**: the same rows, already decoded, inserted straight into the
  same kind of store (``write_spans``, 50k-row batches as the batch writer
  sends them), pinned to core 1.
* **decode**: protobuf bytes to the span batch alone, on one core.
* **disk**: bytes on disk per span after merges, tinct's tables against the
  OpenTelemetry Collector ClickHouse exporter's ``otel_traces`` layout loaded
  with the same spans in chdb.

The ClickHouse 18.16 figures use Debian's ``clickhouse-server`` started on a
free loopback port (unpinned: it is the store, not tinct).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from bench.workload import make_requests
from tests.servers import TinctProcess, clickhouse_server
from tinct.storage import SqlSpanStore, open_store
from tinct.storage.reference import load_otel_layout
from tinct.tracing.otlp_decode import decode_protobuf

CLIENT_CORE, SERVER_CORE = 0, 1
_WRITTEN = re.compile(r'^tinct_writer_written_rows_total\{signal="spans"\} (\S+)$', re.M)


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


def _post_all(url: str, bodies: list[bytes], per_body: int, connections: int) -> tuple[int, float]:
    """POST every body over ``connections`` keep-alive connections; (spans accepted, seconds)."""
    parts = urllib.parse.urlsplit(url)
    accepted = [0] * connections
    errors: list[str] = []
    queue = list(reversed(bodies))
    lock = threading.Lock()

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection(parts.netloc, timeout=60)
        headers = {"Content-Type": "application/x-protobuf"}
        while True:
            with lock:
                if not queue or errors:
                    break
                body = queue.pop()
            conn.request("POST", parts.path, body, headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                errors.append(f"HTTP {response.status}: {payload[:200]!r}")
                break
            answer = ExportTraceServiceResponse.FromString(payload)
            if answer.partial_success.rejected_spans:
                errors.append(f"rejected: {answer.partial_success.error_message}")
                break
            accepted[slot] += per_body
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"ingest failed: {errors[0]}")
    return sum(accepted), elapsed


def _written(base: str) -> float:
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(base).netloc, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    match = _WRITTEN.search(text)
    return float(match.group(1)) if match else 0.0


def end_to_end(
    bodies: list[bytes], per_body: int, store_args: list[str], workdir: Path, connections: int
) -> dict[str, float]:
    _pin(CLIENT_CORE)
    data = workdir / "e2e"
    server = TinctProcess(data, *store_args, prefix=["taskset", "-c", str(SERVER_CORE)])
    try:
        server.wait_ready()
        accepted, seconds = _post_all(server.urls["OTLP/HTTP"], bodies, per_body, connections)
        start_wait = time.perf_counter()
        deadline = start_wait + 120
        while _written(server.main) < accepted and time.perf_counter() < deadline:
            time.sleep(0.02)
        stored_seconds = seconds + (time.perf_counter() - start_wait)
        written = _written(server.main)
    finally:
        code = server.stop(120)
    if code != 0:
        raise SystemExit(f"tinct up exited {code}:\n" + "".join(server.lines[-20:]))
    return {
        "accepted": accepted,
        "accepted_per_s": accepted / seconds,
        "stored_per_s": accepted / stored_seconds,
        "written": written,
    }


def _count_spans(store: SqlSpanStore) -> int:
    return store.table_sizes().get("tinct_spans", (0, 0))[0]


def ceiling(batches: list[pa.Table], url: str) -> tuple[float, SqlSpanStore]:
    store = open_store(url)
    assert isinstance(store, SqlSpanStore)
    _pin(SERVER_CORE)
    start = time.perf_counter()
    for batch in batches:
        store.write_spans(batch)
    elapsed = time.perf_counter() - start
    _pin(CLIENT_CORE)
    return sum(b.num_rows for b in batches) / elapsed, store


def _rebatch(tables: list[pa.Table], rows: int) -> list[pa.Table]:
    whole = pa.concat_tables(tables)
    return [whole.slice(i, rows).combine_chunks() for i in range(0, whole.num_rows, rows)]


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests of --spans each")
    parser.add_argument("--spans", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--backends", default="chdb,clickhouse", help="comma list of chdb, clickhouse"
    )
    args = parser.parse_args()
    backends = set(args.backends.split(","))

    now_ns = time.time_ns() - 60 * 10**9
    bodies = make_requests(args.requests, args.spans, now_ns=now_ns)
    total = args.requests * args.spans
    mib = sum(map(len, bodies)) / 2**20
    print(f"workload: {args.requests} requests x {args.spans} spans, {mib:.0f} MiB protobuf")

    _pin(SERVER_CORE)
    tables: list[pa.Table] = []
    decode_s = _timed(lambda: tables.extend(decode_protobuf(b).batch for b in bodies))
    _pin(CLIENT_CORE)
    batches = _rebatch(tables, 50_000)
    print(f"decode only (1 core):         {total / decode_s:>10,.0f} spans/s")

    workdir = Path(tempfile.mkdtemp(prefix="tinct-bench-"))
    try:
        if "chdb" in backends:
            e2e = end_to_end(bodies, args.spans, [], workdir, args.connections)
            store = open_store(f"chdb://{workdir / 'e2e'}")
            assert isinstance(store, SqlSpanStore)
            stored = _count_spans(store)
            store.close()
            rate, store = ceiling(batches, f"chdb://{workdir / 'ceiling'}")
            _report("chdb", e2e, rate, stored, total)
            store.compact()
            ours = store.table_sizes()
            theirs = load_otel_layout(store, pa.concat_tables(batches))
            store.close()
            _report_disk(ours, theirs, total)
        if "clickhouse" in backends:
            with clickhouse_server(workdir / "clickhouse") as port:
                url = f"clickhouse://127.0.0.1:{port}/bench_e2e"
                e2e = end_to_end(bodies, args.spans, ["--store", url], workdir, args.connections)
                store = open_store(url)
                assert isinstance(store, SqlSpanStore)
                stored = _count_spans(store)
                store.close()
                rate, store = ceiling(batches, f"clickhouse://127.0.0.1:{port}/bench_ceiling")
                store.close()
                _report("clickhouse 18.16", e2e, rate, stored, total)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _report(
    backend: str, e2e: dict[str, float], ceiling_rate: float, stored: int, total: int
) -> None:
    ok = "all readable" if stored == e2e["accepted"] == total else "MISSING SPANS"
    print(
        f"[{backend}] end to end, accepted: {e2e['accepted_per_s']:>10,.0f} spans/s\n"
        f"[{backend}] end to end, stored:   {e2e['stored_per_s']:>10,.0f} spans/s "
        f"({stored:,} of {total:,} spans in the store after SIGTERM: {ok})\n"
        f"[{backend}] ceiling, raw insert:  {ceiling_rate:>10,.0f} spans/s\n"
        f"[{backend}] ratio stored/ceiling: {e2e['stored_per_s'] / ceiling_rate:>10.2f}"
    )


def _report_disk(
    ours: dict[str, tuple[int, int]], theirs: dict[str, tuple[int, int]], total: int
) -> None:
    ours_bytes = sum(b for t, (_, b) in ours.items() if t != "tinct_schema_version")
    theirs_bytes = sum(b for _, b in theirs.values())
    detail = ", ".join(f"{t} {b / total:.1f}" for t, (_, b) in sorted(ours.items()))
    print(
        f"[chdb] disk: tinct {ours_bytes / total:.1f} B/span ({detail}); "
        f"otel_traces layout {theirs_bytes / total:.1f} B/span; "
        f"ratio {ours_bytes / theirs_bytes:.2f}"
    )


if __name__ == "__main__":
    main()
