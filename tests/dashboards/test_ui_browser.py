"""The web UI in real headless Chromium, over a running demo, as a user sees it.

One run of ``tinct demo --with-server`` (10 users, the fault schedule at
speed 60, every request traced) whose ``tinct up`` sends its alerts to a real
Alertmanager started here. Against its UI: picking a time range re-queries
every panel, picking a service filters every panel, clicking a topology node
opens that service's dashboard, a trace's waterfall has a row per span,
"Dye user" adds a dye rule the dye console lists, Silence creates the
matching silence in Alertmanager, and every page draws without console
errors (a screenshot of each is kept in ``test-artifacts/screenshots``).
Every wait is a poll with a deadline.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page

from tests.dashboards.browser import (
    browser_fixture,  # noqa: F401 - fixture
    context_fixture,  # noqa: F401 - fixture
    page_fixture,  # noqa: F401 - fixture
    pick_option,
    screenshot,
    wait_drawn,
)
from tests.demo.running import Demo, run_demo
from tests.servers import ALERTMANAGER, alertmanager_server
from tinct.alerting.notifier import alertmanager_fingerprint

pytestmark = [pytest.mark.browser, pytest.mark.server]

SERVICES = "/d/tinct-services/services"
SERVICE_VARIABLE = '[id=\'{"name":"service","type":"var"}\']'  # Dash's JSON of the dict id
# Behaviour checks wait longer than the drawing check of the last test.
DRAW_SECONDS = 30.0
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """``probe()``'s first truthy answer, polled; fails naming ``what`` and the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s (last: {found!r})")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's Alertmanager on a free loopback port, routing to no receiver; ``host:port``."""
    if shutil.which(ALERTMANAGER) is None:
        pytest.skip("prometheus-alertmanager is not installed")
    workdir = tmp_path_factory.mktemp("alertmanager")
    config = "route:\n  receiver: none\nreceivers:\n  - name: none\n"
    with alertmanager_server(workdir, config) as hostport:
        yield hostport


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, alertmanager: str) -> Iterator[Demo]:
    options = ["--users", "10", "--speed", "60", "--sampling", "1.0", "--seed", "3"]
    options += ["--duration", "240", "--alertmanager", alertmanager]
    with run_demo(tmp_path_factory.mktemp("demo"), options, ready_seconds=90) as running:
        assert running.main, running.output()

        def measured(expr: str) -> Callable[[], bool]:
            def probe() -> bool:
                result = _api(running, "/api/v1/query", query=expr)["result"]
                return bool(result) and float(result[0]["value"][1]) > 0

            return probe

        # Every service dashboard panel has data to draw: request series of
        # the six services, and failed requests at a rate (two exports in).
        every = "count(count by (service) (service_request_duration_seconds_count)) >= 6"
        eventually(measured(every), "RED series of the six services", timeout=60)
        failed = 'sum(rate(service_request_duration_seconds_count{status_class="5xx"}[1m]))'
        eventually(measured(failed), "rate of failed requests", timeout=60)
        yield running


def _api(demo: Demo, path: str, **params: Any) -> Any:
    response = httpx.get(demo.main + path, params=params, timeout=30)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    return response.json()["data"]


def _open(page: Page, demo: Demo, path: str) -> None:
    page.goto(demo.main + path)
    wait_drawn(page, DRAW_SECONDS)


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# Each panel's Plotly graph: the panel (its title and id: titles repeat)
# and type, its date x-axis' range in ms (Plotly's r2l reads date strings
# and numbers alike; null for other axes and empty figures) and the names of
# the traces shown in its legend.
_GRAPHS_JS = """() => [...document.querySelectorAll('.panel .js-plotly-plot')].map(gd => {
    const panel = gd.closest('.panel');
    const ax = gd._fullLayout && gd._fullLayout.xaxis;
    const dated = ax && ax.type === 'date' && ax.range;
    return {
        panel: panel.querySelector('.panel-title').innerText.trim() + ' ' + panel.id,
        timeseries: panel.classList.contains('panel-timeseries'),
        range_ms: dated ? ax.range.map(v => ax.r2l(v)) : null,
        legend: (gd.data || []).filter(t => t.showlegend !== false).map(t => t.name),
    };
})"""


def _graphs(page: Page) -> list[dict[str, Any]]:
    graphs: list[dict[str, Any]] = page.evaluate(_GRAPHS_JS)
    return graphs


def _spans_seconds(page: Page) -> dict[str, float]:
    """Every date x-axis' span in seconds, by panel."""
    return {
        g["panel"]: (g["range_ms"][1] - g["range_ms"][0]) / 1000
        for g in _graphs(page)
        if g["range_ms"]
    }


def test_picking_a_time_range_requeries_every_panel(demo: Demo, page: Page) -> None:
    _open(page, demo, f"{SERVICES}?from=now-30m&to=now")
    before = _spans_seconds(page)
    graphs = _graphs(page)
    timeseries = [g["panel"] for g in graphs if g["timeseries"]]
    assert len(timeseries) == 5, graphs  # rate, errors, p50, p90, p99
    assert set(timeseries) <= set(before), graphs  # each has data on a time axis
    assert all(abs(s - 1800) < 30 for s in before.values()), before

    pick_option(page, "#time-range", "Last 15 minutes")
    page.wait_for_url(re.compile(r"[?&]from=now-15m(&|$)"))
    assert _query(page.url)["to"] == ["now"]

    def redrawn() -> dict[str, float] | None:
        spans = _spans_seconds(page)
        fits = set(spans) == set(before) and all(abs(s - 900) < 30 for s in spans.values())
        return spans if fits else None

    eventually(redrawn, "panel spanning 15 minutes in every graph", timeout=DRAW_SECONDS)
    wait_drawn(page, DRAW_SECONDS)
    screenshot(page, "15m")


def test_picking_one_service_filters_every_panel(demo: Demo, page: Page) -> None:
    _open(page, demo, f"{SERVICES}?from=now-15m&to=now")
    legends = {g["panel"]: set(g["legend"]) for g in _graphs(page) if g["timeseries"]}
    assert max(len(names) for names in legends.values()) == 6, legends  # All: every service

    pick_option(page, SERVICE_VARIABLE, "payments")
    page.wait_for_url(re.compile(r"[?&]var-service=payments(&|$)"))
    assert _query(page.url)["var-service"] == ["payments"]

    def filtered() -> dict[str, set[str]] | None:
        shown = {g["panel"]: set(g["legend"]) for g in _graphs(page) if g["timeseries"]}
        only = len(shown) == 5 and all(names <= {"payments"} for names in shown.values())
        return shown if only and {"payments"} in shown.values() else None

    eventually(filtered, "timeseries panels showing payments only", timeout=DRAW_SECONDS)
    wait_drawn(page, DRAW_SECONDS)
    assert page.locator(SERVICE_VARIABLE).inner_text().strip() == "payments"
    screenshot(page, "payments")


# The rendered position of a Cytoscape node in the page: dash-cytoscape 1.0
# renders into #topology-graph, where cytoscape.js keeps its instance (_cyreg).
_NODE_JS = """(id) => {
    const el = document.querySelector('#topology-graph');
    const cy = el && el._cyreg && el._cyreg.cy;
    const node = cy && cy.getElementById(id);
    if (!node || node.empty()) return null;
    const box = el.getBoundingClientRect(), at = node.renderedPosition();
    return {x: box.left + at.x, y: box.top + at.y};
}"""


def test_clicking_a_topology_service_opens_its_dashboard(demo: Demo, page: Page) -> None:
    _open(page, demo, "/topology")
    seen: list[Any] = [None]

    def settled() -> dict[str, float] | None:
        # The node is there and the layout has stopped moving it.
        now = page.evaluate(_NODE_JS, "orders")
        steady = now is not None and now == seen[0]
        seen[0] = now
        return now if steady else None

    at = eventually(settled, "node orders at rest in the topology graph")
    screenshot(page, "graph")
    page.mouse.click(at["x"], at["y"])
    page.wait_for_url(re.compile(re.escape(SERVICES) + r"\?"))
    assert urlsplit(page.url).path == SERVICES
    assert _query(page.url)["var-service"] == ["orders"]
    wait_drawn(page, DRAW_SECONDS)
    assert page.locator(".dashboard[data-uid=tinct-services] h2").inner_text() == "Services"
    assert page.locator(SERVICE_VARIABLE).inner_text().strip() == "orders"


def _traces(demo: Demo, service: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = _api(
        demo, "/api/traces", service=service, lookback="1h", **params
    )
    return found


def test_a_trace_waterfall_has_one_row_per_span(demo: Demo, page: Page) -> None:
    def wide() -> dict[str, Any] | None:
        # A finished trace: started 20 s ago or more, its spans all exported
        # (the services export every few seconds), so the page and the API
        # see the same spans.
        end_us = int((time.time() - 20) * 1e6)
        found = _traces(demo, "gateway", limit=20, end=end_us)
        return next((t for t in found if len(t["spans"]) >= 4), None)

    trace = eventually(wide, "finished gateway trace of 4 spans or more", timeout=60)
    _open(page, demo, f"/traces?trace={trace['traceID']}")
    rows = page.locator("#waterfall .span-row")
    # The rows are one block of HTML, drawn once its component has rendered.
    rows.first.wait_for(timeout=15_000)
    shown = rows.evaluate_all("rows => rows.map(r => r.dataset.spanId)")
    assert sorted(shown) == sorted(s["spanID"] for s in trace["spans"])
    screenshot(page, "waterfall")


def _user_of(trace: dict[str, Any]) -> str | None:
    for span in trace["spans"]:
        for tag in span["tags"]:
            if tag["key"] == "enduser.id":
                return str(tag["value"])
    return None


def test_dye_user_adds_a_rule_the_dye_console_lists(demo: Demo, page: Page) -> None:
    def undyed_user_trace() -> tuple[str, str] | None:
        # A user the demo did not dye, so the rule found later is the click's.
        for trace in _traces(demo, "gateway", limit=50):
            user = _user_of(trace)
            if user and user not in demo.dyed:
                return trace["traceID"], user
        return None

    trace_id, user = eventually(undyed_user_trace, "trace of an undyed user")
    _open(page, demo, f"/traces?trace={trace_id}")
    page.locator(".dye-user", has_text=re.compile(rf"^Dye user {re.escape(user)}$")).click()
    notice = page.locator("#dye-user-result .notice")
    notice.wait_for()
    text = notice.inner_text()
    assert "bad" not in (notice.get_attribute("class") or ""), text
    rule = re.search(r"\(rule ([0-9a-f]+)", text)
    assert rule and f"user {user}'s" in text, text

    _open(page, demo, "/dye")
    row = page.locator(f"#dye-table tr[data-rule='{rule.group(1)}']")
    assert row.locator("td.match-kind").inner_text() == "user"
    assert row.locator("td.match-value").inner_text() == user
    screenshot(page, "rules")


def test_silence_creates_the_silence_in_alertmanager(
    demo: Demo, alertmanager: str, page: Page
) -> None:
    def firing() -> dict[str, dict[str, str]]:
        alerts = _api(demo, "/api/v1/alerts")["alerts"]
        return {
            alertmanager_fingerprint(a["labels"]): a["labels"]
            for a in alerts
            if a["state"] == "firing"
        }

    eventually(firing, "firing alert", timeout=90)
    _open(page, demo, "/alerting")
    listed = page.locator("#alerting-alerts tr[data-alert]").evaluate_all(
        "rows => rows.map(r => r.dataset.alert)"
    )
    now_firing = firing()
    fingerprint = next((fp for fp in listed if fp in now_firing), None)
    assert fingerprint, f"no firing alert listed: page {listed}, API {now_firing}"
    labels = now_firing[fingerprint]

    page.locator(f"#alerting-alerts tr[data-alert='{fingerprint}'] button").click()
    notice = page.locator("#silence-result .notice")
    notice.wait_for()
    text = notice.inner_text()
    assert "bad" not in (notice.get_attribute("class") or ""), text
    silence_id = re.search(r"silence ([0-9a-f-]{36})", text)
    assert silence_id, text

    response = httpx.get(f"http://{alertmanager}/api/v2/silences", timeout=10)
    silences = {s["id"]: s for s in response.json()}
    silence = silences[silence_id.group(1)]
    assert silence["status"]["state"] == "active", silence
    matchers = {m["name"]: m["value"] for m in silence["matchers"]}
    assert matchers == labels
    assert all(m["isEqual"] and not m["isRegex"] for m in silence["matchers"]), silence
    screenshot(page, "silenced")


PAGES = [
    "/",
    "/d/tinct-infrastructure/infrastructure",
    "/d/tinct-components/components",
    "/d/tinct-services/services",
    "/d/tinct-interfaces/interfaces",
    "/d/tinct-users/users",
    "/explore?expr=up",
    "/topology",
    "/topology?level=interface",
    "/traces?service=gateway",
    "/alerting",
    "/dye",
    "/dashboards",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_draws_without_console_errors(demo: Demo, page: Page, path: str) -> None:
    page.goto(demo.main + path)
    wait_drawn(page)  # the page fixture fails the test on console errors
    failed = page.locator(".page-error").all_inner_texts()
    screenshot(page, "drawn")
    assert not failed, failed
