"""Web UI benchmark: how long pages take to draw fully in headless Chromium.

Run with ``python -m bench.ui`` (``--help`` for the knobs). One run:

1. starts ``tinct demo --with-server`` on free ports (every request sampled)
   and lets it make ``--warmup`` seconds of data;
2. sends one 500-span trace over OTLP/HTTP;
3. opens each page in Debian's Chromium (Playwright, ``/usr/bin/chromium``)
   and times it from navigation to *fully drawn*: the page has content, no
   element carries Dash's loading marker, every graph holds its data (for the
   trace, all 500 waterfall rows are there). Each page is drawn once cold
   (the query cache empty for it) and ``--repeat`` times warm (a reload);
4. prints first and median warm times next to the baseline of the same run:
   the app's shell drawing a page that queries nothing (Dash's start-up and
   one router round trip), and the ratio to it.

Goal: the 12-panel services dashboard fully drawn in <= 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.demo.running import run_demo

DRAWN_JS = """(rows) => {
  const page = document.querySelector('#page');
  if (!page || page.children.length === 0) return false;
  if (document.querySelector('[data-dash-is-loading]')) return false;
  const graphs = document.querySelectorAll('.dash-graph');
  const plots = document.querySelectorAll('.js-plotly-plot');
  if (plots.length < graphs.length) return false;
  for (const g of plots) {
    const empty = !g.data || g.data.length === 0;
    const note = g.layout && g.layout.annotations && g.layout.annotations.length;
    if (empty && !note) return false;
  }
  if (rows && document.querySelectorAll('.span-row').length < rows) return false;
  return true;
}"""
PAGES = (
    ("shell (baseline)", "/bench-blank", 0),
    ("overview", "/", 0),
    ("services dashboard (12 panels)", "/d/tinct-services/services?from=now-15m&to=now", 0),
    ("topology", "/topology?from=now-15m&to=now", 0),
)
_OTLP = re.compile(r"serving OTLP/HTTP on (http://\S+)/v1/traces")


def big_trace(spans: int, now_ns: int) -> tuple[str, dict[str, Any]]:
    """An OTLP/JSON request holding one trace of ``spans`` spans over 5 services."""
    trace_id = os.urandom(16).hex()
    by_service: dict[str, list[dict[str, Any]]] = {}
    for i in range(spans):
        service = f"bench-{i % 5}"
        parent = "" if i == 0 else f"{(i - 1) // 4 + 1:016x}"
        start = now_ns - 2_000_000_000 + i * 1_000_000
        by_service.setdefault(service, []).append(
            {
                "traceId": trace_id,
                "spanId": f"{i + 1:016x}",
                "parentSpanId": parent,
                "name": f"op-{i % 17}",
                "kind": 2 if i == 0 else 3 if i % 2 else 2,
                "startTimeUnixNano": str(start),
                "endTimeUnixNano": str(start + 500_000 + (i % 7) * 100_000),
                "attributes": [{"key": "i", "value": {"intValue": str(i)}}],
            }
        )
    resource_spans = [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": s}}]},
            "scopeSpans": [{"scope": {"name": "bench"}, "spans": found}],
        }
        for s, found in by_service.items()
    ]
    return trace_id, {"resourceSpans": resource_spans}


def _time_page(page: Any, url: str, rows: int, reload: bool) -> float:
    start = time.perf_counter()
    if reload:
        page.reload()
    else:
        page.goto(url)
    try:
        page.wait_for_function(DRAWN_JS, arg=rows, timeout=60_000, polling=20)
    except Exception as exc:
        raise RuntimeError(f"{page.url} was not fully drawn within 60 s") from exc
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__)
    parser.add_argument("--warmup", type=float, default=60, help="seconds of demo data first")
    parser.add_argument("--repeat", type=int, default=5, help="warm draws per page")
    parser.add_argument("--users", type=int, default=100, help="as `make run`")
    parser.add_argument("--speed", type=float, default=1, help="as `make run`")
    parser.add_argument("--trace-spans", type=int, default=500)
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    options = ["--users", str(args.users), "--speed", str(args.speed), "--sampling", "1.0"]
    options += ["--seed", "1", "--duration", str(int(args.warmup + 600))]
    with tempfile.TemporaryDirectory(prefix="tinct-bench-ui-") as tmp:
        with run_demo(Path(tmp), options, ready_seconds=120) as demo:
            otlp = next((m.group(1) for line in demo.lines if (m := _OTLP.search(line))), "")
            print(f"demo running at {demo.main}; letting it make {args.warmup:.0f} s of data")
            time.sleep(args.warmup)
            trace_id, body = big_trace(args.trace_spans, time.time_ns())
            r = httpx.post(f"{otlp}/v1/traces", content=json.dumps(body),
                           headers={"Content-Type": "application/json"}, timeout=30)  # fmt: skip
            r.raise_for_status()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                got = httpx.get(f"{demo.main}/api/traces/{trace_id}", timeout=10)
                if (
                    got.status_code == 200
                    and len(got.json()["data"][0]["spans"]) == args.trace_spans
                ):
                    break
                time.sleep(0.5)
            pages = [
                *PAGES,
                (f"{args.trace_spans}-span trace", f"/traces?trace={trace_id}", args.trace_spans),
            ]  # noqa: E501
            results: list[tuple[str, float, float]] = []
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--no-sandbox"]
                )  # noqa: E501
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                _time_page(page, demo.main + "/bench-blank", 0, reload=False)  # bundles cached
                for name, path, rows in pages:
                    first = _time_page(page, demo.main + path, rows, reload=False)
                    draws = [_time_page(page, "", rows, reload=True) for _ in range(args.repeat)]
                    results.append((name, first, statistics.median(draws)))
                browser.close()
    base = results[0][2]
    print(f"\n{'page':34} {'first':>8} {'warm':>8} {'warm / shell':>13}")
    for name, first, warm in results:
        print(f"{name:34} {first:7.2f}s {warm:7.2f}s {warm / base:12.1f}x")
    services = next(warm for name, _, warm in results if name.startswith("services"))
    verdict = "meets" if services <= 1.5 else "misses"
    print(f"\n12-panel dashboard warm draw {services:.2f} s: {verdict} the 1.5 s goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
