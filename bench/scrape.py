"""Scrape-and-store benchmark: a 50,000-series target into the store, with its ceiling.

Run with ``make bench`` (or ``python -m bench.scrape --help``). Figures from
one run, so machine noise hits them alike:

* **scrape and store**: the scheduler scrapes a Prometheus text exposition of
  50,000 series over HTTP (served by a separate process on loopback), parses
  it, labels the samples, stale-marks, and writes the batch to the store
  synchronously; samples stored per second over ``--scrapes`` scrapes.
* **parse only**: fetching and parsing the same body (the collector alone).
* **raw insert**: the very same sample rows, already built, inserted straight
  into the samples table (one insert per scrape, as the store does).

The ratio scrape-and-store / raw insert says how much of the store's insert
speed the scrape path keeps. The ClickHouse 18.16 figures use Debian's
``clickhouse-server`` on a free loopback port.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from tests.servers import clickhouse_server, free_port, stop_pid, wait_for_port
from tinct.collectors.base import Target
from tinct.collectors.scheduler import Scheduler
from tinct.collectors.scrape import HttpCollector
from tinct.storage import ChdbSpanStore, ClickHouseSpanStore, SqlSpanStore
from tinct.storage import schema as store_schema


def exposition(series: int, seed: int = 5) -> str:
    """A text exposition of ``series`` series in families of 100, node_exporter-like."""
    rng = random.Random(seed)
    lines = []
    per_family = 100
    for f in range(series // per_family):
        name = f"bench_metric_{f}_total" if f % 2 else f"bench_gauge_{f}_bytes"
        kind = "counter" if f % 2 else "gauge"
        lines.append(f"# HELP {name} Benchmark family {f}.")
        lines.append(f"# TYPE {name} {kind}")
        for i in range(per_family):
            value = rng.random() * 1e6
            lines.append(f'{name}{{device="sd{i % 8}",mode="m{i % 5}",cpu="{i}"}} {value:.6g}')
    return "\n".join(lines) + "\n"


def serve(body: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m http.server`` in another process, serving ``body`` at /metrics."""
    (workdir / "metrics").write_text(body)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, 10, proc)
    return proc, f"http://127.0.0.1:{port}/metrics"


def _rate(fn: Callable[[], int]) -> float:
    started = time.perf_counter()
    rows = fn()
    return rows / (time.perf_counter() - started)


def run_store(store: SqlSpanStore, url: str, scrapes: int) -> tuple[float, float, float]:
    """(scrape-and-store, parse-only, raw insert) in samples per second."""
    tables: list[pa.Table] = []

    def sink(table: pa.Table) -> None:
        store.write_samples(table)
        tables.append(table)

    now = [1_700_000_000.0]
    scheduler = Scheduler(sink, store.write_metadata, clock=lambda: now[0])
    collector = HttpCollector(url, timeout=60)
    target = Target(job="bench", labels={"job": "bench", "instance": url}, collector=collector)
    target.timeout = 60
    scheduler.scrape_once(target)  # warm-up: series rows are written once
    tables.clear()

    def scrape_all() -> int:
        for _ in range(scrapes):
            now[0] += 15
            scheduler.scrape_once(target)
        return sum(t.num_rows for t in tables)

    stored = _rate(scrape_all)
    parsed = _rate(lambda: sum(len(f.samples) for _ in range(scrapes) for f in collector.collect()))
    samples = [t.select(["fingerprint", "timestamp_ms", "value"]) for t in tables]
    backend: Any = store._backend  # the raw insert the store itself does
    name = store.target.table(store_schema.SAMPLES)

    def insert_all() -> int:
        for table in samples:
            backend.insert(name, table)
        return sum(t.num_rows for t in samples)

    raw = _rate(insert_all)
    scheduler.close()
    collector.close()
    return stored, parsed, raw


def _report(label: str, stored: float, parsed: float, raw: float) -> None:
    print(f"{label}:")
    print(f"  scrape and store   {stored:>10,.0f} samples/s")
    print(f"  parse only         {parsed:>10,.0f} samples/s")
    print(f"  raw insert         {raw:>10,.0f} samples/s")
    print(f"  ratio stored/raw   {stored / raw:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=50_000)
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--no-clickhouse", action="store_true", help="skip ClickHouse 18.16")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tinct-bench-scrape-"))
    proc, url = serve(exposition(args.series), workdir)
    try:
        print(f"target: {args.series:,} series, {args.scrapes} scrapes per figure")
        store: SqlSpanStore = ChdbSpanStore(str(workdir / "chdb"))
        try:
            _report("chdb (embedded)", *run_store(store, url, args.scrapes))
        finally:
            store.close()
        if not args.no_clickhouse and shutil.which("clickhouse-server"):
            with clickhouse_server(workdir / "ch") as port:
                store = ClickHouseSpanStore("127.0.0.1", port, "bench")
                try:
                    _report("ClickHouse 18.16 server", *run_store(store, url, args.scrapes))
                finally:
                    store.close()
    finally:
        stop_pid(proc)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
