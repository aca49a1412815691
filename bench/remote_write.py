"""Remote write ingest benchmark: Prometheus remote write 1.0 into chdb, with its ceiling.

Run with ``python -m bench.remote_write`` (``--help`` for the sizes).
Figures, all from the same run so that machine noise hits them alike:

* **end to end**: this process, pinned to core 0, posts snappy
  ``WriteRequest`` bodies of 2,000 node_exporter-like series x 5 samples
  (the same series in every request, later timestamps each time, as a
  Prometheus sends them) over keep-alive connections to
  ``POST /api/v1/write`` of :class:`~tinct.remote_write_api.RemoteWriteAPI`
  served by uvicorn (httptools, as ``tinct up`` serves) in another process
  pinned to core 1, writing into chdb through the sample batch writer.
  *accepted* is samples/s answered 204 (a 503 is retried after its
  Retry-After); *stored* is samples/s until the server's writer reports
  every accepted sample written. After SIGTERM the store is opened and
  must hold every sample.
* **ceiling**: the same rows, already decoded, inserted straight into a
  fresh chdb store (``write_samples``, 50k-row batches as the batch writer
  sends them), pinned to core 1. The ratio stored/ceiling is what the
  receiver keeps of the store's insert speed.
* **decode**: bodies to sample tables alone, on one core, with the
  receiver's decoder (series cache warm, as for a Prometheus that keeps
  sending the same series, and cold), next to the straightforward decoder
  over the full generated messages (label by label, sample by sample) it
  was chosen over.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from tests.servers import free_port, stop_pid, wait_for_port
from tinct.collectors.remote_write import RemoteWriteDecoder, decompress
from tinct.collectors.remote_write_proto import encode_write_request, message_class
from tinct.metrics import NAME_LABEL, SAMPLE_SCHEMA, Matcher, fingerprint
from tinct.storage import ChdbSpanStore

CLIENT_CORE, SERVER_CORE = 0, 1
STEP_MS = 15_000
HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


def node_series(count: int) -> list[list[tuple[str, str]]]:
    """``count`` label sets shaped like node_exporter's, 154 per host."""
    out: list[list[tuple[str, str]]] = []
    modes = ["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"]
    host = 0
    while len(out) < count:
        base = [("instance", f"host-{host:03d}.example.net:9100"), ("job", "node")]
        for cpu in range(16):
            for mode in modes:
                out.append([("__name__", "node_cpu_seconds_total"), ("cpu", str(cpu)), *base])
                out[-1].append(("mode", mode))
        for device in ("eth0", "eth1", "lo", "docker0"):
            for name in ("receive_bytes", "transmit_bytes", "receive_packets", "transmit_packets"):
                out.append([("__name__", f"node_network_{name}_total"), ("device", device), *base])
        for mount, device, fs in (("/", "sda1", "ext4"), ("/boot", "sda2", "vfat")):
            for name in ("avail_bytes", "size_bytes", "files_free"):
                labels = [("__name__", f"node_filesystem_{name}"), ("device", f"/dev/{device}")]
                out.append([*labels, ("fstype", fs), *base, ("mountpoint", mount)])
        for name in ("MemFree_bytes", "MemTotal_bytes", "Cached_bytes", "Buffers_bytes"):
            out.append([("__name__", f"node_memory_{name}"), *base])
        host += 1
    return [sorted(labels) for labels in out[:count]]


def make_bodies(requests: int, series: int, samples: int, start_ms: int) -> list[bytes]:
    """``requests`` bodies of the same ``series``, ``samples`` each, time moving on."""
    rng = random.Random(11)
    label_sets = node_series(series)
    bodies = []
    for r in range(requests):
        first = start_ms + r * samples * STEP_MS
        batch = [
            (labels, [(first + k * STEP_MS, rng.random() * 1e9) for k in range(samples)])
            for labels in label_sets
        ]
        bodies.append(encode_write_request(batch))
    return bodies


def decode_full_messages(body: bytes, cache: dict[tuple[tuple[str, str], ...], Any]) -> pa.Table:
    """The alternative: walk the full generated messages (same output, same
    series cache keyed by decoded labels; validation left out, to its favour)."""
    request = message_class("WriteRequest").FromString(bytes(decompress(body)))
    refs = []
    counts = []
    times: list[int] = []
    values: list[float] = []
    for series in request.timeseries:
        labels = tuple(sorted((label.name, label.value) for label in series.labels))
        ref = cache.get(labels)
        if ref is None:
            keys = [k for k, _ in labels if k != NAME_LABEL]
            vals = [v for k, v in labels if k != NAME_LABEL]
            ref = cache[labels] = (fingerprint(labels), dict(labels)[NAME_LABEL], keys, vals)
        refs.append(ref)
        counts.append(len(series.samples))
        for sample in series.samples:
            times.append(sample.timestamp)
            values.append(sample.value)
    rows = pa.array([i for i, n in enumerate(counts) for _ in range(n)], pa.int64())
    series = pa.table(
        [
            pa.array([r[0] for r in refs], pa.uint64()),
            pa.array([r[1] for r in refs], pa.string()),
            pa.array([r[2] for r in refs], pa.list_(pa.string())),
            pa.array([r[3] for r in refs], pa.list_(pa.string())),
        ],
        names=SAMPLE_SCHEMA.names[:4],
    ).take(rows)
    return pa.Table.from_arrays(
        [*series.columns, pa.array(times, pa.int64()), pa.array(values, pa.float64())],
        schema=SAMPLE_SCHEMA,
    )


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- the server (a separate process) ------------------------------------------------


def serve(port: int, data: str) -> None:
    """The receiver in front of chdb, until SIGTERM; then every sample is written."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tinct.remote_write_api import RemoteWriteAPI
    from tinct.storage import sample_batch_writer

    store = ChdbSpanStore(data)
    writer = sample_batch_writer(store)
    api = RemoteWriteAPI(lambda: writer.submit, lambda: store.write_metadata, None)

    async def written(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "written": writer.written_rows,
                "accepted": api.accepted_samples,
                "refused": api.refused_samples,
            }
        )

    app = Starlette(routes=[*api.routes(), Route("/written", written)])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        ws="none",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )

    class Server(uvicorn.Server):
        # uvicorn re-raises SIGTERM after serving, which would end this
        # process before the writer flushes; stop serving and carry on instead.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server = Server(config)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    server.run()
    writer.close()
    store.close()


# --- the client ---------------------------------------------------------------------


def _post_all(
    port: int, bodies: list[bytes], per_body: int, connections: int
) -> tuple[int, float, int]:
    """POST every body; (samples accepted, seconds, 503s retried)."""
    accepted = [0] * connections
    retried = [0] * connections
    errors: list[str] = []
    queue = list(reversed(bodies))
    lock = threading.Lock()

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue or errors:
                    break
                body = queue.pop()
            while True:
                conn.request("POST", "/api/v1/write", body, HEADERS)
                response = conn.getresponse()
                payload = response.read()
                if response.status != 503:
                    break
                retried[slot] += 1
                time.sleep(float(response.getheader("Retry-After", "1")) / 10)
            if response.status != 204:
                errors.append(f"HTTP {response.status}: {payload[:200]!r}")
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
        raise SystemExit(f"remote write failed: {errors[0]}")
    return sum(accepted), elapsed, sum(retried)


def _written(port: int) -> dict[str, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/written")
    figures: dict[str, int] = json.loads(conn.getresponse().read())
    conn.close()
    return figures


def end_to_end(
    bodies: list[bytes], per_body: int, data: Path, connections: int
) -> dict[str, float]:
    _pin(CLIENT_CORE)
    port = free_port()
    command = [sys.executable, "-m", "bench.remote_write", "--serve", str(port), str(data)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(SERVER_CORE), *command]
    server = subprocess.Popen(command)
    try:
        wait_for_port(port, 60, server)
        accepted, seconds, retried = _post_all(port, bodies, per_body, connections)
        start_wait = time.perf_counter()
        deadline = start_wait + 120
        while _written(port)["written"] < accepted and time.perf_counter() < deadline:
            time.sleep(0.02)
        stored_seconds = seconds + (time.perf_counter() - start_wait)
        figures = _written(port)
    finally:
        stop_pid(server, 120)
    if server.returncode != 0:
        raise SystemExit(f"the receiver exited {server.returncode}")
    return {
        "accepted": accepted,
        "accepted_per_s": accepted / seconds,
        "stored_per_s": accepted / stored_seconds,
        "retried": retried,
        "refused": figures["refused"],
    }


def count_samples(data: Path, start_ms: int, end_ms: int) -> int:
    store = ChdbSpanStore(str(data))
    try:
        series = store.series([Matcher(NAME_LABEL, "=~", ".+")], start_ms, end_ms)
        return int(store.samples([s.fingerprint for s in series], start_ms, end_ms).num_rows)
    finally:
        store.close()


def ceiling(batches: list[pa.Table], data: Path) -> float:
    store = ChdbSpanStore(str(data))
    _pin(SERVER_CORE)

    def insert() -> None:
        for batch in batches:
            store.write_samples(batch)

    try:
        seconds = _timed(insert)
    finally:
        _pin(CLIENT_CORE)
        store.close()
    return sum(b.num_rows for b in batches) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--series", type=int, default=2000, help="series per request")
    parser.add_argument("--samples", type=int, default=5, help="samples per series")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return

    per_body = args.series * args.samples
    total = args.requests * per_body
    start_ms = (int(time.time()) // 60 * 60 - 3 * 3600) * 1000
    end_ms = start_ms + args.requests * args.samples * STEP_MS
    bodies = make_bodies(args.requests, args.series, args.samples, start_ms)
    mib = sum(map(len, bodies)) / 2**20
    print(
        f"workload: {args.requests} requests x {args.series} series x {args.samples} samples, "
        f"{mib:.1f} MiB snappy"
    )

    _pin(SERVER_CORE)
    tables: list[pa.Table] = []
    decoder = RemoteWriteDecoder()
    decoder.decode(bodies[0])  # one-time costs (first calls into numpy, Arrow) left out
    cold_s = _timed(lambda: RemoteWriteDecoder().decode(bodies[0]))
    warm_s = _timed(lambda: tables.extend(decoder.decode(b)[0] for b in bodies))
    cache: dict[tuple[tuple[str, str], ...], Any] = {}
    decode_full_messages(bodies[0], cache)
    full_s = _timed(lambda: [decode_full_messages(b, cache) for b in bodies])
    _pin(CLIENT_CORE)
    print(f"decode only, series cached (1 core): {total / warm_s:>10,.0f} samples/s")
    print(f"decode only, new series (1 core)  : {per_body / cold_s:>10,.0f} samples/s")
    print(f"decode only, full messages (1 core): {total / full_s:>10,.0f} samples/s")

    whole = pa.concat_tables(tables)
    batches = [whole.slice(i, 50_000).combine_chunks() for i in range(0, whole.num_rows, 50_000)]
    workdir = Path(tempfile.mkdtemp(prefix="tinct-bench-rw-"))
    try:
        e2e = end_to_end(bodies, per_body, workdir / "e2e", args.connections)
        stored = count_samples(workdir / "e2e", start_ms, end_ms)
        rate = ceiling(batches, workdir / "ceiling")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ok = "all readable" if stored == e2e["accepted"] == total else "MISSING SAMPLES"
    print(
        f"[chdb] end to end, accepted: {e2e['accepted_per_s']:>10,.0f} samples/s "
        f"({e2e['retried']:.0f} requests retried after 503, {e2e['refused']:.0f} samples refused)\n"
        f"[chdb] end to end, stored:   {e2e['stored_per_s']:>10,.0f} samples/s "
        f"({stored:,} of {total:,} samples in the store after SIGTERM: {ok})\n"
        f"[chdb] ceiling, raw insert:  {rate:>10,.0f} samples/s\n"
        f"[chdb] ratio stored/ceiling: {e2e['stored_per_s'] / rate:>10.2f}"
    )


if __name__ == "__main__":
    main()
