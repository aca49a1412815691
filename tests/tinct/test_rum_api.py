"""The browser beacon API: the snippet, validation, CORS, cumulative series, caps, events."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from starlette.applications import Starlette

from tests.asgi import AppClient
from tinct.catalog import CATALOG
from tinct.errors import ConfigError
from tinct.metrics import NAME_LABEL, Matcher
from tinct.rum import page_label
from tinct.rum_api import RumAPI
from tinct.storage import InMemoryMetricStore, InMemorySpanStore
from tinct.storage.memory_rum import InMemoryRumEventStore
from tinct.storage.rum import RumEventQuery

PATH = "/api/tinct/rum"
ERRORS = "/api/tinct/rum/errors"
SHOP = "https://shop.example"
T0_NS = 1_714_564_800 * 10**9  # 2024-05-01T12:00:00Z
FOREVER = 2**62
EVERYTHING = RumEventQuery(0, 2**64 - 1)


class Clock:
    """Advances one second per reading, so each report has its own time."""

    def __init__(self) -> None:
        self.ns = T0_NS

    def __call__(self) -> int:
        self.ns += 10**9
        return self.ns


class Rig:
    def __init__(self, **options: Any) -> None:
        self.events: Any = InMemoryRumEventStore()
        self.metrics = InMemoryMetricStore()
        self.sink: Any = self.metrics.write_samples
        self.clock = Clock()
        options.setdefault("allowed_origins", [SHOP])
        api = RumAPI(lambda: self.events, lambda: self.sink, clock=self.clock, **options)
        self.client = AppClient(Starlette(routes=api.routes()))

    def report(self, body: Any, origin: str | None = SHOP, **kwargs: Any) -> Any:
        headers = {"Origin": origin} if origin else {}
        headers.update(kwargs.pop("headers", {}))
        content = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.post(PATH, content=content, headers=headers, **kwargs)

    def series(self, name: str, **labels: str) -> list[dict[str, str]]:
        matchers = [Matcher(NAME_LABEL, "=", name)]
        matchers += [Matcher(k, "=", v) for k, v in labels.items()]
        return [s.labels for s in self.metrics.series(matchers, 0, FOREVER)]

    def values(self, name: str, **labels: str) -> list[float]:
        """Every sample of the one series ``name{labels}``, oldest first."""
        matchers = [Matcher(NAME_LABEL, "=", name)]
        matchers += [Matcher(k, "=", v) for k, v in labels.items()]
        found = self.metrics.series(matchers, 0, FOREVER)
        assert len(found) == 1, found
        samples = self.metrics.samples([found[0].fingerprint], 0, FOREVER)
        return [float(v) for v in samples.column("value").to_pylist()]


def error(kind: str = "js", **fields: Any) -> dict[str, Any]:
    return {"type": "error", "kind": kind, "message": f"{kind} went wrong", **fields}


def nav(**timings: Any) -> dict[str, Any]:
    return {"type": "navigation", **timings}


def report(*events: Any, **fields: Any) -> dict[str, Any]:
    return {"app": "shop", "page": "/cart", "user": "42", "events": list(events), **fields}


def test_the_snippet_is_served_cacheable() -> None:
    rig = Rig()
    r = rig.client.get("/api/tinct/rum.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert "max-age" in r.headers["cache-control"]
    assert "sendBeacon" in r.text and "tinctRum" in r.text
    again = rig.client.get("/api/tinct/rum.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("{not json", 400, "body: not valid JSON"),
        ("[" * 50_000 + "]" * 50_000, 413, "body: must be at most 65536 bytes"),
        ("[" * 30_000 + "]" * 30_000, 400, "body: not valid JSON"),
        ([1], 422, "body: must be a JSON object"),
        ({"page": "/", "events": []}, 422, "app: must match"),
        (report(app="shop app"), 422, "app: must match"),
        (report(app="a" * 65), 422, "app: must be at most 64 characters, got 65"),
        (report(page="cart"), 422, "page: must be a path starting with '/'"),
        (report(page="/" + "p" * 512), 422, "page: must be at most 512 characters"),
        (report(user="u" * 129), 422, "user: must be at most 128 characters, got 129"),
        (report(user=42), 422, "user: must be a string, got 42"),
        (report(referrer="x"), 422, "referrer: unknown field"),
        ({"app": "shop", "page": "/"}, 422, "events: is required"),
        (report(*[error()] * 51), 422, "events: must hold at most 50 events, got 51"),
        (report(5), 422, "events[0]: must be an object"),
        (report(nav(), {"type": "click"}), 422, "events[1].type: must be navigation or error"),
        (report(nav(load=-1)), 422, "events[0].load: must be between 0 and 3.6e+06, got -1"),
        (report(nav(load=3_600_001)), 422, "events[0].load: must be between 0 and 3.6e+06"),
        (report(nav(ttfb="fast")), 422, 'events[0].ttfb: must be a number, got "fast"'),
        (report(nav(dns=True)), 422, "events[0].dns: must be a number, got true"),
        ('{"app":"shop","page":"/","events":[{"type":"navigation","load":NaN}]}', 422, "load"),
        (report(nav(transfer_size=1.5)), 422, "events[0].transfer_size: must be an integer"),
        (report(nav(paint=1)), 422, "events[0].paint: unknown field"),
        (report(error("css")), 422, "events[0].kind: must be one of js, resource, promise"),
        (report(error(line=1.5)), 422, "events[0].line: must be an integer, got 1.5"),
        (report(error(col=2**32)), 422, "events[0].col: must be between 0 and 4.29497e+09"),
        (report(error(message=["x"])), 422, 'events[0].message: must be a string, got ["x"]'),
    ],
)
def test_bad_reports_are_refused_naming_the_field(body: Any, status: int, message: str) -> None:
    rig = Rig()
    r = rig.report(body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert r.headers["access-control-allow-origin"] == SHOP
    assert rig.events.find_rum_events(EVERYTHING) == []
    assert rig.metrics.series([], 0, FOREVER) == []


def test_a_declared_oversized_body_is_refused_before_reading() -> None:
    r = Rig().report(b"{}", headers={"Content-Length": "70000"})
    assert r.status_code == 413


def test_free_text_is_truncated_and_made_valid_utf8() -> None:
    rig = Rig()
    body = report(error(message="m" * 5000, stack="s" * 9000, source="\ud800x"))
    r = rig.report(json.dumps(body), headers={"User-Agent": "UA" * 1000})
    assert r.status_code == 200, r.text
    (row,) = rig.events.find_rum_events(EVERYTHING)
    assert (len(row["message"]), len(row["stack"]), len(row["user_agent"])) == (1000, 4000, 512)
    assert row["source"] == "?x"


def test_cors_allows_configured_origins_only() -> None:
    rig = Rig(allowed_origins=[SHOP, "http://127.0.0.1:8080", "http://blog.example:80/"])
    preflight = rig.client.request(
        "OPTIONS",
        PATH,
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["vary"] == "Origin"
    for origin in (SHOP, "http://127.0.0.1:8080", "http://blog.example", "HTTPS://Shop.Example"):
        r = rig.report(report(nav(load=100)), origin=origin)
        assert r.status_code == 200, (origin, r.text)
        assert r.headers["access-control-allow-origin"] == origin
    for origin in ("https://evil.example", "http://shop.example", "http://127.0.0.1:8081", "null"):
        r = rig.report(report(error()), origin=origin)
        assert r.status_code == 403, origin
        assert r.json()["error"].startswith("origin: ")
        assert "access-control-allow-origin" not in r.headers
        refused = rig.client.request("OPTIONS", PATH, headers={"Origin": origin})
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
    assert rig.events.find_rum_events(EVERYTHING) == []
    # Not from a page (curl, a server): no Origin, no CORS.
    assert rig.report(report(error()), origin=None).status_code == 200


def test_any_origin_when_star_is_configured() -> None:
    rig = Rig(allowed_origins=["*"])
    r = rig.report(report(error()), origin="https://anything.example")
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("origin", ["shop.example", "https://shop.example/app", "ftp://x", ""])
def test_a_bad_origin_setting_is_a_config_error(origin: str) -> None:
    with pytest.raises(ConfigError, match="allowed_origins"):
        Rig(allowed_origins=[origin])


def test_counters_and_histograms_accumulate_across_reports() -> None:
    rig = Rig()
    first = report(
        nav(
            dns=2, connect=10, tls=6, ttfb=80, dom_content_loaded=300, load=420, transfer_size=5000
        ),
        error("js"),
        error("resource"),
    )
    assert rig.report(first).json() == {"navigations": 1, "errors": 2}
    assert rig.report(report(nav(load=2600), error("js"))).status_code == 200
    labels = {"layer": "user", "app": "shop", "page": "/cart"}

    # A new series starts with a 0, then every report writes the running total.
    assert rig.values("browser_errors_total", kind="js", **labels) == [0, 1, 2]
    assert rig.values("browser_errors_total", kind="resource", **labels) == [0, 1]
    assert rig.values("browser_page_load_seconds_count", **labels) == [0, 1, 2]
    assert rig.values("browser_page_load_seconds_sum", **labels) == pytest.approx([0, 0.42, 3.02])
    assert rig.values("browser_page_load_seconds_bucket", le="0.5", **labels) == [0, 1, 1]
    assert rig.values("browser_page_load_seconds_bucket", le="0.25", **labels) == [0, 0, 0]
    assert rig.values("browser_page_load_seconds_bucket", le="3.0", **labels) == [0, 1, 2]
    assert rig.values("browser_page_load_seconds_bucket", le="+Inf", **labels) == [0, 1, 2]
    ttfb = {"timing": "ttfb", **labels}
    assert rig.values("browser_navigation_timing_seconds_count", **ttfb) == [0, 1]
    assert rig.values("browser_navigation_timing_seconds_bucket", le="0.1", **ttfb) == [0, 1]
    assert rig.values("browser_navigation_timing_seconds_bucket", le="0.075", **ttfb) == [0, 0]
    assert rig.values("browser_page_transfer_bytes_sum", **labels) == [0, 5000]
    timings = {s["timing"] for s in rig.series("browser_navigation_timing_seconds_count")}
    assert timings == {"dns", "connect", "tls", "ttfb", "dom_content_loaded"}

    every = rig.metrics.series([], 0, FOREVER)
    for series in every:
        name = series.labels[NAME_LABEL]
        assert CATALOG.problems(name, series.labels) == [], series.labels
        assert "user" not in series.labels and "42" not in series.labels.values()


def test_sample_times_increase_even_when_the_clock_does_not() -> None:
    rig = Rig()
    api = RumAPI(lambda: rig.events, lambda: rig.sink, allowed_origins=["*"], clock=lambda: T0_NS)
    client = AppClient(Starlette(routes=api.routes()))
    for _ in range(3):
        assert client.post(PATH, content=json.dumps(report(error()))).status_code == 200
    found = rig.metrics.series([Matcher(NAME_LABEL, "=", "browser_errors_total")], 0, FOREVER)
    samples = rig.metrics.samples([found[0].fingerprint], 0, FOREVER).to_pylist()
    t0 = T0_NS // 10**6
    assert [(s["timestamp_ms"], s["value"]) for s in samples] == [
        (t0 - 1, 0),
        (t0, 1),
        (t0 + 1, 2),
        (t0 + 2, 3),
    ]


def test_pages_past_the_cap_are_other_and_ids_are_folded() -> None:
    rig = Rig(max_pages=2, max_apps=1)
    for page in ("/product/123", "/product/987", "/cart", "/checkout", "/cart"):
        assert rig.report(report(error(), page=page)).status_code == 200
    assert rig.report(report(error(), app="blog", page="/post/1")).status_code == 200
    pages = {(s["app"], s["page"]) for s in rig.series("browser_errors_total")}
    assert pages == {
        ("shop", "/product/:id"),
        ("shop", "/cart"),
        ("shop", "other"),
        ("other", "other"),
    }
    assert rig.values("browser_errors_total", page="/product/:id") == [0, 1, 2]
    assert rig.values("browser_errors_total", app="shop", page="other") == [0, 1]
    assert rig.values("browser_errors_total", page="/cart") == [0, 1, 2]
    # The events keep the real page and app.
    stored = {(e["app"], e["page"]) for e in rig.events.find_rum_events(EVERYTHING)}
    assert ("shop", "/checkout") in stored and ("blog", "/post/1") in stored
    assert page_label("/u/9f86d081-884c-7d65-9a2f-0123456789ab/x2/42") == "/u/:id/x2/:id"


def test_errors_are_stored_and_listed_with_the_user() -> None:
    rig = Rig()
    body = report(
        error("js", source="https://shop.example/app.js?v=3", line=12, col=7, stack="at f"),
        page="/cart?coupon=SECRET#top",
    )
    ua = {"User-Agent": "Mozilla/5.0 test"}
    assert rig.report(body, headers=ua).status_code == 200
    assert rig.report(report(error("promise"), app="blog", user="7")).status_code == 200
    assert rig.report(report(error("resource"))).status_code == 200

    listed = rig.client.get(ERRORS, params={"start": "0"}).json()["errors"]
    assert [(e["app"], e["kind"], e["user"]) for e in listed] == [
        ("shop", "resource", "42"),
        ("blog", "promise", "7"),
        ("shop", "js", "42"),
    ]
    assert listed[2] == {
        "time": "2024-05-01T12:00:01.000000000Z",
        "time_unix_nano": str(T0_NS + 10**9),
        "app": "shop",
        "page": "/cart",
        "user": "42",
        "kind": "js",
        "message": "js went wrong",
        "source": "https://shop.example/app.js?v=3",
        "line": 12,
        "col": 7,
        "stack": "at f",
        "user_agent": "Mozilla/5.0 test",
    }

    def kinds(**params: str) -> list[str]:
        r = rig.client.get(ERRORS, params={"start": "0", **params})
        assert r.status_code == 200, r.text
        return [e["kind"] for e in r.json()["errors"]]

    assert kinds(app="shop") == ["resource", "js"]
    assert kinds(kind="promise") == ["promise"]
    assert kinds(user="7") == ["promise"]
    assert kinds(limit="1") == ["resource"]
    assert kinds(start="2024-05-01T12:00:02Z", end=str(T0_NS // 10**9 + 2)) == ["promise"]
    # The default window is the last hour.
    assert len(rig.client.get(ERRORS).json()["errors"]) == 3
    rig.clock.ns += 2 * 3600 * 10**9
    assert rig.client.get(ERRORS).json()["errors"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit: must be between 1 and 10000, got 0"),
        ({"limit": "lots"}, "limit: must be an integer"),
        ({"start": "yesterday"}, "start: must be RFC 3339 or Unix seconds"),
        ({"end": "2024-05-01T12:00:00"}, "end: RFC 3339 time needs a zone"),
        ({"start": "-5"}, "start: must be between 0 and"),
        ({"start": "20", "end": "10"}, "start: must not be after end"),
        ({"kind": "css"}, "kind: must be one of js, resource, promise"),
        ({"app": "a" * 65}, "app: must be at most 64 characters"),
    ],
)
def test_bad_list_parameters_are_400(params: dict[str, str], message: str) -> None:
    r = Rig().client.get(ERRORS, params=params)
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_store_states() -> None:
    rig = Rig()
    rig.events = None
    r = rig.report(report(error()))
    assert r.status_code == 503
    assert "store" in r.json()["error"]
    # Timings need no store: they go to the sample sink.
    assert rig.report(report(nav(load=10))).status_code == 200
    rig.events = InMemorySpanStore()
    assert rig.report(report(error())).status_code == 501
    assert rig.client.get(ERRORS).status_code == 501


def test_a_failing_sink_loses_no_counts() -> None:
    rig = Rig()
    written = rig.metrics.write_samples

    def broken(table: pa.Table) -> None:
        raise RuntimeError("queue full")

    rig.sink = broken
    assert rig.report(report(error())).status_code == 200
    assert rig.report(report(error())).status_code == 200
    rig.sink = written
    assert rig.report(report(error())).status_code == 200
    assert rig.values("browser_errors_total", kind="js") == [3]
    rig.sink = None
    assert rig.report(report(error())).status_code == 200
    assert len(rig.events.find_rum_events(EVERYTHING)) == 4
