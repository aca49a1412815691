"""The browser beacon in real headless Chromium: a page on one origin reports to tinct on another.

The API runs under uvicorn in a thread, writing series to an
InMemoryMetricStore and errors to an in-memory event store; the page comes
from a plain HTTP server on another port (another origin), includes the
snippet from the API, throws an error, references a missing image and
rejects a promise. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from starlette.applications import Starlette

from tests.appserver import serve_app
from tinct.metrics import NAME_LABEL, Matcher
from tinct.rum_api import RumAPI
from tinct.storage import InMemoryMetricStore
from tinct.storage.memory_rum import InMemoryRumEventStore
from tinct.storage.rum import RumEventQuery

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
PAGE = "/shop/cart.html"
WAIT_SECONDS = 15.0
T = TypeVar("T")

_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>cart</title>
<script src="{api}/api/tinct/rum.js" data-app="shop" data-user="u-42"></script>
</head><body>
<h1>cart</h1>
<img src="/missing.png" alt="">
<script>setTimeout(function () {{ throw new Error("boom from the test page"); }}, 0);</script>
</body></html>
"""


@contextlib.contextmanager
def page_server(html: Callable[[], str]) -> Iterator[str]:
    """Serve ``html()`` at PAGE (404 elsewhere) on a free loopback port; yield the origin."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.split("?")[0] == PAGE:
                body, status, kind = html().encode(), 200, "text/html; charset=utf-8"
            else:
                body, status, kind = b"not found", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def eventually(probe: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT_SECONDS}s")
        time.sleep(0.05)


def test_a_real_page_reports_timings_and_errors() -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    metrics = InMemoryMetricStore()
    events = InMemoryRumEventStore()
    everything = RumEventQuery(0, 2**64 - 1)
    with contextlib.ExitStack() as stack:
        # The page's origin is known once its server runs, the API's URL once
        # the API runs, and each needs the other: the page text comes last.
        html: dict[str, str] = {}
        page_origin = stack.enter_context(page_server(lambda: html["text"]))
        api = RumAPI(
            lambda: events,
            lambda: metrics.write_samples,
            allowed_origins=[page_origin],
        )
        inner = Starlette(routes=api.routes())
        origins: list[bytes | None] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["method"] == "POST":
                origins.append(dict(scope["headers"]).get(b"origin"))
            await inner(scope, receive, send)

        api_url = stack.enter_context(serve_app(app))
        html["text"] = _HTML.format(api=api_url)
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], timeout=30_000
        )
        stack.callback(browser.close)
        page = browser.new_page()
        page.set_default_timeout(WAIT_SECONDS * 1000)
        page.goto(f"{page_origin}{PAGE}?coupon=SECRET", wait_until="load")

        def load_count() -> list[float] | None:
            matchers = [
                Matcher(NAME_LABEL, "=", "browser_page_load_seconds_count"),
                Matcher("page", "=", PAGE),
                Matcher("app", "=", "shop"),
                Matcher("layer", "=", "user"),
            ]
            found = metrics.series(matchers, 0, 2**62)
            if not found:
                return None
            values = metrics.samples([found[0].fingerprint], 0, 2**62).column("value")
            return [float(v) for v in values.to_pylist()]

        assert eventually(load_count, "page load series")[-1] == 1

        def kinds() -> dict[str, dict[str, Any]] | None:
            rows = {row["kind"]: row for row in events.find_rum_events(everything)}
            return rows if {"js", "resource"} <= set(rows) else None

        found = eventually(kinds, "js and resource errors")
        js, resource = found["js"], found["resource"]
        assert "boom from the test page" in js["message"]
        assert js["source"] == f"{page_origin}{PAGE}"
        assert js["line"] > 0 and "Error" in js["stack"]
        assert resource["source"] == f"{page_origin}/missing.png"
        assert resource["message"] == "img failed to load"
        for row in (js, resource):
            assert (row["app"], row["page"], row["user_id"]) == ("shop", PAGE, "u-42")
            assert "Chrome" in row["user_agent"]

        # Later: the user changes, a promise is rejected unhandled, the page flushes.
        page.evaluate(
            "() => { window.tinctRum.setUser('u-7'); Promise.reject(new Error('nope')); }"
        )
        page.evaluate(
            "() => new Promise(done => setTimeout(() => { window.tinctRum.flush(); done(); }, 100))"
        )

        def promise_error() -> dict[str, Any] | None:
            rows = [r for r in events.find_rum_events(everything) if r["kind"] == "promise"]
            return rows[0] if rows else None

        promise = eventually(promise_error, "promise error")
        assert (promise["message"], promise["user_id"]) == ("nope", "u-7")

        timings = metrics.label_values(
            "timing",
            [Matcher(NAME_LABEL, "=", "browser_navigation_timing_seconds_count")],
            0,
            2**62,
        )
        assert {"ttfb", "dom_content_loaded"} <= set(timings)

        # Samples are written after the events of the same report.
        def error_kinds() -> set[str] | None:
            matchers = [Matcher(NAME_LABEL, "=", "browser_errors_total")]
            found = {s.labels["kind"] for s in metrics.series(matchers, 0, 2**62)}
            return found if len(found) == 3 else None

        assert eventually(error_kinds, "three error series") == {"js", "resource", "promise"}
        assert all("u-42" not in s.labels.values() for s in metrics.series([], 0, 2**62))
        # The browser said where the page came from, and that origin was let in.
        assert origins and set(origins) == {page_origin.encode()}
