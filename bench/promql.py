"""PromQL benchmark: dashboard queries on tinct beside a real Prometheus, same data.

Run with ``python -m bench.promql`` (``--help`` for the knobs). One run:

1. generates ``--series`` series (about 1,000: counters, a classic
   histogram, gauges, over 10 jobs) at a 15 s interval over ``--days`` days;
2. loads them into a chdb store (``write_samples``) and backfills them into
   Prometheus with ``promtool tsdb create-blocks-from openmetrics``;
3. starts `tinct up` on that store and Debian's Prometheus on those blocks,
   each on a free loopback port;
4. times typical dashboard queries through both HTTP APIs
   (``/api/v1/query_range``), over the last hour (step 15 s) and over the
   whole span (step 10 m), best of ``--repeat``, and prints each pair with
   its ratio tinct / Prometheus (goal: <= 2 on 1 hour, <= 1 on 7 days).

Both answer over HTTP with JSON, so the ratio includes the same kinds of
overhead on each side.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa

from tests.servers import TinctProcess, free_port, stop_pid, wait_for_port
from tinct.metrics import SAMPLE_SCHEMA, fingerprint, sorted_labels
from tinct.storage import ChdbSpanStore

STEP_S = 15
QUERIES = (
    ("sum by (job) (rate(x_total[5m]))", "sum rate"),
    ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", "p99 histogram"),
    ("avg_over_time(g[5m])", "avg_over_time"),
    ("topk(5, rate(x_total[5m]))", "topk rate"),
)
_BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")


def series_labels(total: int) -> list[dict[str, str]]:
    """About ``total`` label sets: counters, a histogram's buckets, gauges."""
    found: list[dict[str, str]] = []
    counters = total // 2
    histograms = (total // 4) // len(_BUCKETS)
    gauges = total - counters - histograms * len(_BUCKETS)
    for i in range(counters):
        found.append({"__name__": "x_total", "job": f"job{i % 10}", "instance": f"i{i}"})
    for i in range(histograms):
        for le in _BUCKETS:
            found.append(
                {"__name__": "h_bucket", "job": f"job{i % 10}", "instance": f"i{i}", "le": le}
            )
    for i in range(gauges):
        found.append({"__name__": "g", "job": f"job{i % 10}", "instance": f"i{i}"})
    return found


def values_for(labels: dict[str, str], times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counters grow (histogram buckets cumulatively by le), gauges wander."""
    n = len(times)
    name = labels["__name__"]
    if name == "x_total":
        return np.cumsum(rng.poisson(5.0, n)).astype(np.float64)
    if name == "h_bucket":
        share = 1.0 if labels["le"] == "+Inf" else min(1.0, float(labels["le"]) * 2 + 0.05)
        return np.floor(np.cumsum(rng.poisson(10.0, n)) * share)
    return 50 + np.cumsum(rng.normal(0, 1, n))


def load_tinct(folder: Path, labels: list[dict[str, str]], times: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    store = ChdbSpanStore(str(folder))
    try:
        for one in labels:
            sorted_ = sorted_labels(one)
            keys = [k for k, _ in sorted_ if k != "__name__"]
            values = [v for k, v in sorted_ if k != "__name__"]
            n = len(times)
            table = pa.table(
                [
                    pa.array(np.full(n, fingerprint(sorted_), dtype=np.uint64)),
                    pa.array([one["__name__"]] * n),
                    pa.array([keys] * n, pa.list_(pa.string())),
                    pa.array([values] * n, pa.list_(pa.string())),
                    pa.array(times),
                    pa.array(values_for(one, times, rng)),
                ],
                schema=SAMPLE_SCHEMA,
            )
            store.write_samples(table)
        store.compact()  # merged parts, as Prometheus's backfilled blocks are compacted
    finally:
        store.close()


def openmetrics(labels: list[dict[str, str]], times: np.ndarray, seed: int) -> Iterator[str]:
    """The same samples as OpenMetrics text for promtool (one family at a time)."""
    rng = np.random.default_rng(seed)
    by_name: dict[str, list[tuple[dict[str, str], np.ndarray]]] = {}
    for one in labels:
        by_name.setdefault(one["__name__"], []).append((one, values_for(one, times, rng)))
    seconds = [f"{t / 1000:.3f}" for t in times]
    types = {"x_total": "counter", "h_bucket": "gauge", "g": "gauge"}
    for name, members in by_name.items():
        family = name.removesuffix("_total") if types[name] == "counter" else name
        yield f"# TYPE {family} {types[name]}\n"
        for one, values in members:
            text = ",".join(f'{k}="{v}"' for k, v in sorted(one.items()) if k != "__name__")
            prefix = f"{name}{{{text}}} "
            yield "".join(f"{prefix}{v:.17g} {s}\n" for v, s in zip(values, seconds, strict=True))
    yield "# EOF\n"


def backfill_prometheus(
    folder: Path, labels: list[dict[str, str]], times: np.ndarray, seed: int
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "data.om"
    with text.open("w") as out:
        for chunk in openmetrics(labels, times, seed):
            out.write(chunk)
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(text), str(folder / "tsdb")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    text.unlink()


def time_query(base: str, query: str, start: float, end: float, step: float, repeat: int) -> float:
    best = float("inf")
    params: dict[str, str | float] = {"query": query, "start": start, "end": end, "step": step}
    for _ in range(repeat):
        began = time.perf_counter()
        response = httpx.get(f"{base}/api/v1/query_range", params=params, timeout=600)
        elapsed = time.perf_counter() - began
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{base}: {query}: {body}")
        best = min(best, elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tinct-bench-promql-"))
    end_s = (int(time.time()) // STEP_S) * STEP_S - 3600  # blocks must be out of the head
    start_s = end_s - int(args.days * 86400)
    times = np.arange(start_s * 1000 + 7_000, end_s * 1000, STEP_S * 1000, dtype=np.int64)
    labels = series_labels(args.series)
    print(f"{len(labels)} series x {len(times)} samples ({len(labels) * len(times):,})")
    began = time.perf_counter()
    load_tinct(work / "tinct", labels, times, args.seed)
    print(f"loaded into chdb in {time.perf_counter() - began:.0f}s")
    began = time.perf_counter()
    backfill_prometheus(work / "prom", labels, times, args.seed)
    print(f"backfilled Prometheus in {time.perf_counter() - began:.0f}s")
    port = free_port()
    (work / "prom" / "prometheus.yml").write_text("global: {scrape_interval: 15s}\n")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={work / 'prom' / 'prometheus.yml'}",
         f"--storage.tsdb.path={work / 'prom' / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
         "--storage.tsdb.retention.time=30d"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    tinct = TinctProcess(work / "tinct")
    try:
        wait_for_port(port, 60, prom)
        tinct.wait_ready(120)
        prom_base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while httpx.get(f"{prom_base}/-/ready").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("Prometheus not ready")
            time.sleep(0.5)
        windows = (("1 hour", end_s - 3600, end_s, STEP_S), ("whole span", start_s, end_s, 600))
        print(f"{'query':<16} {'window':<11} {'tinct':>9} {'Prometheus':>11} {'ratio':>6}")
        for query, title in QUERIES:
            for name, a, b, step in windows:
                ours = time_query(tinct.main, query, a, b, step, args.repeat)
                theirs = time_query(prom_base, query, a, b, step, args.repeat)
                print(
                    f"{title:<16} {name:<11} {ours:>8.3f}s {theirs:>10.3f}s {ours / theirs:>6.2f}"
                )
    finally:
        tinct.stop()
        stop_pid(prom)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
