"""Grafana's "Node Exporter Full", unchanged, over a real node_exporter scraped by `tinct up`.

Debian's node_exporter runs on a free loopback port (systemd collector off:
no systemd in a test container); a real ``tinct up`` scrapes it every second
as job ``node`` with the peer suite's ``node-exporter-full.json`` as its
dashboards folder, and Debian's Prometheus scrapes the same exporter beside
it. The dashboard is opened the way its page opens it (variables resolved
against tinct's Prometheus API, every panel of every row queried, collapsed
rows included), its every target is asked of both tinct and Prometheus, and
the page is drawn in headless Chromium.

Some panels have no data on a VM whatever the backend: their metrics are
not in node_exporter's output (collectors off by default, no sensors, no
/proc/schedstat). They are listed in :data:`EXPECTED_EMPTY` with the reason,
and each empty panel is checked against the exporter's own output, so a
panel that goes blank because of tinct fails the test.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.peer_suites import REPO, require_peer_suite
from tests.prometheus_server import (
    NODE_EXPORTER,
    PROMETHEUS,
    Prometheus,
    node_exporter,
    prometheus_server,
)
from tests.servers import TinctProcess
from tinct.dashboards.builtin import builtin_dashboards
from tinct.dashboards.components.panel import figure_for
from tinct.dashboards.context import Context
from tinct.dashboards.folder import DashboardFolder
from tinct.dashboards.pages.dashboard import DashboardView, open_dashboard
from tinct.dashboards.panel_data import PanelData, PanelQuery, query_panel
from tinct.dashboards.query import TinctClient
from tinct.dashboards.repeats import LaidOutPanel
from tinct.dashboards.urlstate import ViewState
from tinct.dashboards.variables import VariableScope

pytestmark = pytest.mark.server

for _binary in (NODE_EXPORTER, PROMETHEUS):
    if not Path(_binary).exists():
        pytest.skip(
            f"{_binary} is not installed (Debian packages prometheus-node-exporter, prometheus:"
            " make debs)",
            allow_module_level=True,
        )

DASHBOARD = require_peer_suite("grafana-dashboards") / "node-exporter-full.json"
UID, SLUG = "rYdddlPWk", "node-exporter-full"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
HOST = os.uname().nodename
SCRAPES = 4
WAIT_SECONDS = 40.0
# The panels drawn from series of the kind tinct queries (not text, rows...).
QUERY_KINDS = frozenset({"timeseries", "stat", "gauge", "bargauge", "heatmap", "table"})

# Panels with no data on a VM in a container, whichever backend draws them:
# their metrics are not in node_exporter 1.5's output here.
_SYSTEMD = "systemd collector off (--no-collector.systemd: no systemd in a test container)"
_PROCESSES = "processes collector is off by default in node_exporter (node_processes_*)"
_SCHEDSTAT = "no /proc/schedstat on this kernel: schedstat collector fails (node_schedstat_*)"
_HWMON = "no /sys/class/hwmon in the VM: hwmon collector fails (node_hwmon_*)"
_TCPSTAT = "tcpstat collector is off by default in node_exporter (node_tcp_connection_states)"
EXPECTED_EMPTY = {
    "SWAP Used": "no swap: SwapTotal is 0, so the query is 0 * NaN = NaN (as in Prometheus),"
    " which lastNotNull skips as Grafana's does",
    "Processes Detailed States": _PROCESSES,
    "PIDs Number and Limit": _PROCESSES,
    "Threads Number and Limit": _PROCESSES,
    "CPU Saturation per Core": _SCHEDSTAT,
    "CPU Schedule Timeslices": _SCHEDSTAT,
    "CPU Frequency Scaling": "no cpufreq in the VM (node_cpu_scaling_frequency_*)",
    "IRQ Detail": "interrupts collector is off by default in node_exporter (node_interrupts_total)",
    "Hardware Temperature Monitor": _HWMON,
    "Hardware Fan Speed": _HWMON,
    "Cooling Device Utilization": "no cooling devices in /sys/class/thermal",
    "Power Supply": "no power supplies in /sys/class/power_supply",
    "Systemd Units State": _SYSTEMD,
    "Systemd Sockets Current": _SYSTEMD,
    "Systemd Sockets Accepted": _SYSTEMD,
    "Systemd Sockets Refused": _SYSTEMD,
    "Softnet RPS": "node_softnet_received_rps_total and node_softnet_flow_limit_count_total"
    " are newer than Debian's node_exporter 1.5",
    "TCP Stat Persistent": _TCPSTAT,
    "TCP Stat Transient": _TCPSTAT,
    "TCP Socket Queue": _TCPSTAT,
}
# Panels dividing one disk rate by another: no data while the disks did no
# I/O of that kind in the window (0 / 0 is NaN, as in Prometheus), which
# depends on what else the machine does during the test.
IDLE_DISK = {"Disk Average Wait Time"}
# What a user looks at first: these must draw data on any Linux machine.
KEY_PANELS = [
    "CPU Busy",
    "Sys Load",
    "RAM Used",
    "Root FS Used",
    "CPU Cores",
    "RAM Total",
    "SWAP Total",
    "RootFS Total",
    "Uptime",
    "Pressure",
    "CPU Basic",
    "Memory Basic",
    "Network Traffic Basic",
    "Disk Space Used Basic",
    "CPU",
    "Memory",
    "Network Traffic",
    "Disk IOps",
    "Disk Throughput",
    "Filesystem Space Available",
    "Disk Read/Write IOps",
    "File Descriptor",
    "Sockstat TCP",
    "Node Exporter Scrape Time",
]
# The row opened in the browser: collapsed at first, all of its panels have data.
BROWSER_ROW = "CPU / Memory / Net / Disk"
_METRIC = re.compile(r"\b(?:node|process)_[a-zA-Z0-9_]+")


@dataclass
class Stack:
    """A node_exporter, the `tinct up` and the Prometheus scraping it."""

    tinct: str
    node: str
    folder: Path
    prometheus: Prometheus


@dataclass
class Opened:
    """The dashboard opened for the last 5 minutes, every panel queried."""

    ctx: Context
    dv: DashboardView
    # (row title, laid-out panel, its data) for every panel of every row.
    panels: list[tuple[str, LaidOutPanel, PanelData | None]]


def _tinct_query(base: str, expr: str, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{base}/api/v1/query", params={"query": expr, **params}, timeout=30, trust_env=False
    )
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _wait_scraped(base: str) -> None:
    """Until tinct has stored SCRAPES successful scrapes of the exporter."""
    deadline = time.monotonic() + WAIT_SECONDS
    query = 'count_over_time(up{job="node"}[1m]) and up{job="node"} == 1'
    while True:
        found = _tinct_query(base, query)
        if found and float(found[0]["value"][1]) >= SCRAPES:
            return
        assert time.monotonic() < deadline, f"tinct did not scrape node_exporter: {found}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("node-exporter-full")
    folder = workdir / "dashboards"
    folder.mkdir()
    shutil.copyfile(DASHBOARD, folder / DASHBOARD.name)
    with contextlib.ExitStack() as servers:
        node = f"127.0.0.1:{servers.enter_context(node_exporter(workdir / 'node'))}"
        config = workdir / "tinct.yaml"
        config.write_text(
            f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["{node}"]
dashboards:
  path: {folder}
"""
        )
        tinct = TinctProcess(workdir / "data", "--config", str(config))
        servers.callback(tinct.stop)
        # Prometheus starts while tinct opens its store.
        scrape = [{"job_name": "node", "static_configs": [{"targets": [node]}]}]
        prometheus = servers.enter_context(prometheus_server(workdir / "prometheus", scrape))
        tinct.wait_ready()
        _wait_scraped(tinct.main)
        prometheus.wait_scraped({"node": SCRAPES})
        yield Stack(tinct.main, node, folder, prometheus)
        assert tinct.proc.poll() is None, "".join(tinct.lines)


@pytest.fixture(scope="module")
def opened(stack: Stack) -> Iterator[Opened]:
    """The dashboard as ``/d/<uid>?from=now-5m&to=now`` opens it, every panel queried
    in parallel as ``render_rows`` queries them."""
    with ThreadPoolExecutor(8) as workers:
        folder = DashboardFolder(stack.folder, builtin=builtin_dashboards)
        ctx = Context(TinctClient(stack.tinct), folder, workers=workers)
        view = ViewState.parse("?from=now-5m&to=now", time.time())
        dv = open_dashboard(ctx, view, UID)
        assert dv is not None, folder.errors()
        jobs = []
        for row in dv.rows:
            for lp in row.panels:
                job = None
                if lp.panel.type in QUERY_KINDS:
                    scope = VariableScope.of(dv.resolved, {**row.scoped, **lp.scoped})
                    q = PanelQuery(ctx.client, view.range.start, view.range.end, scope)
                    job = workers.submit(query_panel, lp.panel, q)
                jobs.append((row.title, lp, job))
        panels = [(row, lp, None if job is None else job.result()) for row, lp, job in jobs]
        yield Opened(ctx, dv, panels)
        ctx.client.close()


def _has_data(data: PanelData | None) -> bool:
    return data is not None and any(not math.isnan(v) for s in data.series for v in s.values)


def _figure(opened: Opened, lp: LaidOutPanel, data: PanelData) -> Any:
    """The panel's Plotly figure, as the page draws it (UTC)."""
    view = opened.dv.view
    span = (view.range.start, view.range.end)
    return figure_for(lp, data, time_range=span, utc_offset_min=0, timezone="utc")


def _exposition(node: str) -> dict[str, float]:
    """node_exporter's own output: each metric name, with its last sample's value."""
    text = httpx.get(f"http://{node}/metrics", timeout=30, trust_env=False).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.split(r"[{ ]", line, maxsplit=1)[0]
            out[name] = float(line.rsplit(" ", 1)[1])
    return out


def test_variables_resolve_and_panels_draw_node_exporter_data(stack: Stack, opened: Opened) -> None:
    dv = opened.dv
    current = {r.name: r.current for r in dv.resolved}
    options = {r.name: [value for _, value in r.options] for r in dv.resolved}
    assert "node" in options["job"] and current["job"] == ["node"]
    assert current["nodename"] == [HOST] and options["nodename"] == [HOST]
    assert current["node"] == [stack.node] and options["node"] == [stack.node]
    assert all(not r.error for r in dv.resolved), [(r.name, r.error) for r in dv.resolved]

    rows = [row for row in dv.rows if row.row is not None]
    panels = opened.panels
    assert (len(rows), len(panels)) == (16, 125), "141 panels: 16 rows and 125 others"
    assert [r.title for r in rows if not r.collapsed] == [
        "Quick CPU / Mem / Disk",
        "Basic CPU / Mem / Net / Disk",
    ]
    assert {lp.panel.type for _, lp, _ in panels} <= QUERY_KINDS

    errors = {lp.panel.title: data.errors for _, lp, data in panels if data and data.errors}
    assert errors == {}, "tinct refused queries of the dashboard"
    drawn = {lp.panel.title for _, lp, data in panels if _has_data(data)}
    empty = {lp.panel.title for _, lp, data in panels} - drawn
    allowed = set(EXPECTED_EMPTY) | IDLE_DISK
    assert empty <= allowed, "panels without data: " + ", ".join(sorted(empty - allowed))
    assert set(KEY_PANELS) <= drawn
    # "N of 141 panels (M of 125 non-row panels) draw data", N counting the rows.
    print(f"{len(drawn) + len(rows)} of 141 panels ({len(drawn)} of 125 non-row panels) draw data")

    # Each empty panel is the machine's doing: every one of its queries reads a
    # metric node_exporter does not export here (and tinct has none of it).
    exported = _exposition(stack.node)
    for _, lp, data in panels:
        if lp.panel.title not in empty - IDLE_DISK:
            continue
        assert data is not None
        if lp.panel.title == "SWAP Used":
            assert exported["node_memory_SwapTotal_bytes"] == 0
            continue
        for expr in data.exprs:
            missing = [m for m in _METRIC.findall(expr) if m not in exported]
            assert missing, f"{lp.panel.title}: {expr} reads only exported metrics"
            for name in missing:
                assert _tinct_query(stack.tinct, f'group({{__name__="{name}"}})') == []

    # The numbers a user reads first are the machine's.
    by_title = {lp.panel.title: data for _, lp, data in panels}

    def value(title: str) -> float:
        data = by_title[title]
        assert data is not None and len(data.series) == 1, title
        return data.series[0].values[-1]

    assert value("CPU Cores") == os.cpu_count()
    assert value("RAM Total") == exported["node_memory_MemTotal_bytes"]
    root = os.statvfs("/")
    assert value("RootFS Total") == root.f_blocks * root.f_frsize
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert abs(value("Uptime") - uptime) < WAIT_SECONDS
    assert 0 <= value("RAM Used") <= 100 and 0 <= value("Root FS Used") <= 100
    cpu_basic = by_title["CPU Basic"]
    assert cpu_basic is not None
    assert {"Busy System", "Busy User", "Idle"} <= {s.name for s in cpu_basic.series}

    # Every panel's figure builds from the real data, "No data" only where empty.
    for _, lp, data in panels:
        assert data is not None
        figure = _figure(opened, lp, data)
        texts = [a.text for a in figure.layout.annotations]
        assert (lp.panel.title in empty) == (lp.panel.field.no_value in texts), lp.panel.title


def _label_sets(result: list[dict[str, Any]]) -> list[tuple[tuple[str, str], ...]]:
    return sorted(tuple(sorted(s["metric"].items())) for s in result)


def test_dashboard_queries_answer_as_prometheus_does(stack: Stack, opened: Opened) -> None:
    """Every target of the dashboard, asked at the same instant of tinct and of
    Prometheus 2.42 scraping the same exporter: the same series come back."""
    at = f"{time.time() - 2:.3f}"
    exprs = sorted({e for _, _, data in opened.panels if data for e in data.exprs})
    assert len(exprs) > 200

    def compare(expr: str) -> tuple[str, Any, Any]:
        ours = _label_sets(_tinct_query(stack.tinct, expr, time=at))
        return expr, ours, _label_sets(stack.prometheus.query(expr, time=at))

    with ThreadPoolExecutor(8) as workers:
        answers = list(workers.map(compare, exprs))
    differ = {expr: (ours, theirs) for expr, ours, theirs in answers if ours != theirs}
    assert differ == {}
    # Values that hold still between the two scrapes agree exactly.
    for title in ("CPU Cores", "RAM Total", "SWAP Total", "RootFS Total"):
        data = next(d for _, lp, d in opened.panels if lp.panel.title == title)
        assert data is not None
        (expr,) = data.exprs
        ours = _tinct_query(stack.tinct, expr, time=at)[0]["value"][1]
        theirs = stack.prometheus.query(expr, time=at)[0]["value"][1]
        assert ours == theirs, (title, expr)


def test_field_overrides_shape_memory_basic(opened: Opened) -> None:
    (lp, data) = next((lp, d) for _, lp, d in opened.panels if lp.panel.title == "Memory Basic")
    assert data is not None
    figure = _figure(opened, lp, data)
    # byName "Total" -> custom.stacking {group: false}: RAM total is a line over
    # the stacked used/cache/free, not stacked on them (the axis reaches 2x RAM).
    memory = {t.name: t for t in figure.data}
    assert memory["Total"].stackgroup != memory["Used"].stackgroup


# Drawn: no callback pending and every graph under ``root`` plotted by plotly.js.
_DRAWN_JS = """root => {
  if (document.querySelector('[data-dash-is-loading]')) return false;
  const graphs = root.querySelectorAll('[id*=\\'"type":"panel-graph"\\']');
  const plots = root.querySelectorAll('.js-plotly-plot');
  return graphs.length > 0 && plots.length === graphs.length
    && [...plots].every(p => p._fullLayout && Array.isArray(p.data));
}"""
# Each panel under ``root``: its title, class, traces and annotation texts.
_PANELS_JS = """root => [...root.querySelectorAll('.panel')].map(p => {
  const plot = p.querySelector('.js-plotly-plot');
  return {
    title: p.querySelector('.panel-title').innerText.trim(),
    kind: p.className,
    error: p.querySelector('.panel-error') !== null,
    traces: plot ? plot.data.length : -1,
    texts: plot ? (plot.layout.annotations || []).map(a => a.text) : [],
  };
})"""


def _id(**parts: str) -> str:
    """A Dash pattern-matching id as the DOM has it (keys sorted, no spaces)."""
    return "{" + ",".join(f'"{k}":"{v}"' for k, v in sorted(parts.items())) + "}"


@pytest.mark.browser
def test_the_page_draws_in_chromium(stack: Stack, opened: Opened) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    # What the library found empty on this machine shows "No data", nothing else does.
    empty = {lp.panel.title for _, lp, data in opened.panels if not _has_data(data)}

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    url = (
        f"{stack.tinct}/d/{UID}/{SLUG}?from=now-5m&to=now"
        f"&var-job=node&var-nodename={HOST}&var-node={stack.node}"
    )
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], timeout=30_000
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(url)
            timeout = WAIT_SECONDS * 1000
            page.wait_for_function(f"({_DRAWN_JS})(document.body)", timeout=timeout)
            picked = {
                name: page.locator(f"[id='{_id(name=name, type='var')}'] .dash-dropdown-value")
                .inner_text()
                .strip()
                for name in ("job", "nodename", "node")
            }
            assert picked == {"job": "node", "nodename": HOST, "node": stack.node}

            rows = page.locator("details.row")
            assert rows.count() == 16
            first = rows.nth(0)
            panels = first.evaluate(_PANELS_JS)
            assert len(panels) == 11
            for panel in panels:
                assert not panel["error"], panel
                assert ("No data" in panel["texts"]) == (panel["title"] in empty), panel
                if panel["title"] not in empty and panel["kind"] != "panel panel-timeseries":
                    assert all(re.search(r"\d", t) for t in panel["texts"]), panel
            page.screenshot(path=str(SCREENSHOTS / "node-exporter-full.png"))

            row = rows.filter(has=page.locator("summary", has_text=f"{BROWSER_ROW} ("))
            assert row.count() == 1 and row.get_attribute("open") is None
            row.locator("summary").click()
            # The row's body is replaced when its panels arrive: ask the row.
            page.wait_for_function(
                f"row => row.querySelector('.grid .panel') !== null && ({_DRAWN_JS})(row)",
                arg=row.element_handle(),
                timeout=timeout,
            )
            row_panels = row.evaluate(_PANELS_JS)
            assert len(row_panels) == 10
            assert [p["title"] for p in row_panels if p["traces"] < 1 or p["error"]] == []
            row.scroll_into_view_if_needed()
            row.screenshot(path=str(SCREENSHOTS / "node-exporter-full-row.png"))
        finally:
            browser.close()
    assert problems == []
