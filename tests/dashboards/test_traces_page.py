"""The traces page: search form and results, the open trace, its logs, "Dye user", callbacks.

A fake client answers like tinct's APIs with the hand-made traces of
``test_traces_view`` and records what the page asked; dye rules go through
the API's own parser, so a bad one fails as the API would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import dash
import pytest
from dash.development.base_component import Component

from tests.dashboards.test_traces_view import (
    OTHER_TRACE,
    T0,
    TRACE_ID,
    A,
    D,
    make_small_trace,
    make_trace,
)
from tests.dashboards.tree import by_id, classes, no_id, walk, with_class
from tinct.dashboards import ids
from tinct.dashboards.callbacks import traces as callbacks
from tinct.dashboards.components.shell import shell
from tinct.dashboards.context import Context
from tinct.dashboards.pages import traces as page
from tinct.dashboards.query import QueryError, TinctClient
from tinct.dashboards.urlstate import ViewState
from tinct.dye_api import parse_rule_request, rule_json

NOW = T0 / 1e6 + 60  # a minute after the main trace started


class FakeTraceClient:
    """The traces part of TinctClient over canned traces; ``fail`` names methods that raise."""

    def __init__(self) -> None:
        self.traces = {t["traceID"]: t for t in (make_trace(), make_small_trace())}
        self.searches: list[dict[str, Any]] = []
        self.added: list[Mapping[str, Any]] = []
        self.fail: dict[str, str] = {}

    def _check(self, method: str) -> None:
        if method in self.fail:
            raise QueryError(self.fail[method])

    def services(self) -> list[str]:
        self._check("services")
        return ["web", "shop"]

    def operations(self, service: str) -> list[str]:
        self._check("operations")
        return {"web": ["GET /checkout", "auth", "GET /"], "shop": ["POST /cart"]}[service]

    def find_traces(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        self._check("find_traces")
        self.searches.append(dict(params))
        return list(self.traces.values())

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        self._check("trace")
        return self.traces.get(trace_id.rjust(32, "0"))

    def logs(self, trace_id: str) -> list[dict[str, Any]]:
        self._check("logs")
        if trace_id != TRACE_ID:
            return []
        return [
            {
                "time": "2024-05-01T12:00:00.031000000Z",
                "time_unix_nano": str(T0 * 1000 + 31_000_000),
                "trace_id": TRACE_ID,
                "span_id": D,
                "severity_number": 17,
                "severity_text": "ERROR",
                "body": "deadlock on cart 42",
                "service": "shop",
                "dye": "user:42",
            },
            {
                "time": "2024-05-01T12:00:00.002000000Z",
                "time_unix_nano": str(T0 * 1000 + 2_000_000),
                "trace_id": TRACE_ID,
                "span_id": A,
                "severity_text": "INFO",
                "body": {"msg": "checkout", "items": 3},
                "service": "web",
                "dye": "user:42",
            },
        ]

    def add_dye_rule(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        self._check("add_dye_rule")
        self.added.append(rule)
        try:
            stored = parse_rule_request(dict(rule), "9f86d081884c7d65", NOW)
        except Exception as exc:  # the API's 422, as the client raises it
            raise QueryError(str(exc)) from None
        return rule_json(stored)


def _client(fake: FakeTraceClient) -> TinctClient:
    return cast(TinctClient, fake)


def _texts(node: Any) -> Iterator[str]:
    if isinstance(node, str | int | float):
        yield str(node)
    elif isinstance(node, list | tuple):
        for child in node:
            yield from _texts(child)
    elif isinstance(node, Component):
        yield from _texts(getattr(node, "children", None))


def text(node: Any) -> str:
    """The text a browser would show for ``node``, whitespace collapsed."""
    return " ".join(" ".join(_texts(node)).split())


def notices(node: Any) -> list[str]:
    return [text(c) for c in walk(node) if {"notice", "bad"} <= classes(c)]


def _layout(fake: FakeTraceClient, search: str, offset: int = 0) -> Any:
    ctx = Context(client=_client(fake), folder=None, clock=lambda: NOW)
    return page.layout(ctx, ViewState.parse(search, NOW, offset))


# -- the page ----------------------------------------------------------------------------


def test_a_search_with_an_open_trace_shows_form_results_waterfall_dye_and_logs() -> None:
    fake = FakeTraceClient()
    tree = _layout(fake, f"?service=web&trace={TRACE_ID}")
    assert notices(tree) == []

    # The form, filled from the URL.
    assert by_id(tree, page.SERVICE).value == "web"
    assert [o["value"] for o in by_id(tree, page.SERVICE).options] == ["shop", "web"]
    assert [o["value"] for o in by_id(tree, page.OPERATION).options] == [
        "GET /",
        "GET /checkout",
        "auth",
    ]
    assert by_id(tree, page.LIMIT).value == "20"
    assert text(by_id(tree, page.FIND)) == "Find traces"
    assert page.SERVICE in {getattr(c, "id", None) for c in walk(by_id(tree, ids.TRACE_SEARCH))}

    # The results: newest first, each linking to itself with the search kept.
    results = by_id(tree, page.RESULTS)
    rows = [r for r in walk(results) if "trace-result" in classes(r)]
    assert [getattr(r, "data-trace-id") for r in rows] == [OTHER_TRACE, TRACE_ID]
    checkout = rows[1]
    assert classes(checkout) == {"trace-result", "error", "selected"}
    assert "web: GET /checkout" in text(checkout) and "130ms" in text(checkout)
    assert "web (4), shop (3)" in text(checkout)
    link = next(c for c in walk(checkout) if "trace-link" in classes(c))
    assert link.href == f"/traces?service=web&trace={TRACE_ID}"
    assert list(by_id(tree, ids.TRACE_SCATTER).figure.data[0].customdata) == [
        OTHER_TRACE,
        TRACE_ID,
    ]

    # The open trace.
    view = by_id(tree, page.TRACE_VIEW)
    assert getattr(view, "data-trace-id") == TRACE_ID
    header = text(by_id(tree, page.TRACE_HEADER))
    assert "web: GET /checkout" in header and "Duration 130ms" in header
    assert "Spans 7" in header and "Errors 1" in header and "Dyed request: user:42" in header
    assert "web (4)" in header and "shop (3)" in header
    assert len(with_class(by_id(tree, ids.WATERFALL), "span-row")) == 7
    assert no_id(tree, ids.SPAN_DETAIL) is False
    close = by_id(tree, page.CLOSE)
    assert close.href == "/traces?service=web"

    # One "Dye user" button per distinct enduser.id.
    buttons = with_class(tree, "dye-user")
    assert [b.id for b in buttons] == [
        {"type": ids.DYE_USER, "user": "42"},
        {"type": ids.DYE_USER, "user": "7"},
    ]
    assert [text(b) for b in buttons] == ["Dye user 42", "Dye user 7"]
    by_id(tree, ids.DYE_USER_RESULT)

    # The dyed request's logs.
    section = with_class(tree, "trace-logs-section")[0]
    assert "dyed" in classes(section) and "Logs of the dyed request (user:42)" in text(section)
    log_rows = [r for r in walk(by_id(tree, page.LOGS)) if "log-row" in classes(r)]
    assert [getattr(r, "data-span-id") for r in log_rows] == [D, A]
    assert text(log_rows[0]).split()[:6] == [
        "2024-05-01",
        "12:00:00.031",
        "ERROR",
        "shop",
        "deadlock",
        "on",
    ]
    assert "SELECT cart" in text(log_rows[0])
    assert '{"msg": "checkout", "items": 3}' in text(log_rows[1])


def test_the_search_sends_jaegers_parameters_for_the_time_range() -> None:
    fake = FakeTraceClient()
    search = (
        "?service=web&operation=GET+/checkout&tags=http.status_code%3D500+error%3Dtrue"
        "+msg%3D%22a+b%22&minDuration=100ms&maxDuration=1.5s&limit=5&from=now-15m&to=now"
    )
    _layout(fake, search)
    (params,) = fake.searches
    assert params == {
        "service": "web",
        "operation": "GET /checkout",
        "tags": '{"http.status_code":"500","error":"true","msg":"a b"}',
        "minDuration": "100ms",
        "maxDuration": "1.5s",
        "limit": 5,
        "start": int((NOW - 900) * 1e6),
        "end": int(NOW * 1e6),
    }


def test_a_service_panels_link_alone_runs_the_search() -> None:
    fake = FakeTraceClient()
    tree = _layout(fake, "?service=web&from=now-30m&to=now")
    assert fake.searches and fake.searches[0]["limit"] == 20
    assert len(with_class(by_id(tree, page.RESULTS), "trace-result")) == 2
    assert no_id(tree, page.TRACE_VIEW) and no_id(tree, ids.WATERFALL)


def test_without_a_service_nothing_is_searched_but_a_trace_still_opens() -> None:
    fake = FakeTraceClient()
    tree = _layout(fake, f"?trace={OTHER_TRACE}")
    assert fake.searches == [] and no_id(tree, page.RESULTS)
    assert "Choose a service" in text(tree)
    assert len(with_class(by_id(tree, ids.WATERFALL), "span-row")) == 2
    assert no_id(tree, ids.DYE_USER_RESULT)  # nobody to dye
    assert "No log records" in text(with_class(tree, "trace-logs-section")[0])


@pytest.mark.parametrize(
    ("search", "problem"),
    [
        ("?service=web&tags=error", "tags: expected key=value (logfmt), got 'error'"),
        ("?service=web&minDuration=5x", "minDuration: '5x' is not a duration"),
        ("?service=web&limit=0", "limit: 0 is outside 1..1500"),
        ("?service=web&limit=inf", "limit: 'inf' is not a number"),
        ("?service=web&trace=xyz", "trace: 'xyz' is not a trace id"),
    ],
)
def test_bad_search_fields_are_named_and_not_sent(search: str, problem: str) -> None:
    fake = FakeTraceClient()
    tree = _layout(fake, search)
    shown = notices(by_id(tree, page.MESSAGES))
    assert any(problem in n for n in shown), shown
    if "trace=" not in search:
        assert fake.searches == []


@pytest.mark.parametrize("method", ["services", "operations", "find_traces", "trace", "logs"])
def test_query_errors_show_in_the_page_and_the_rest_still_draws(method: str) -> None:
    fake = FakeTraceClient()
    fake.fail[method] = "HTTP 503: tinct is starting"
    tree = _layout(fake, f"?service=web&trace={TRACE_ID}")
    assert any("tinct is starting" in n for n in notices(tree))
    by_id(tree, ids.TRACE_SEARCH)
    if method != "trace":
        assert len(with_class(tree, "span-row")) == 7
    if method != "find_traces":
        assert len(with_class(tree, "trace-result")) == 2


def test_an_unknown_trace_says_so() -> None:
    tree = _layout(FakeTraceClient(), "?trace=" + "f" * 32)
    assert notices(by_id(tree, page.TRACE_VIEW)) == [f"Trace {'f' * 32} was not found."]


def test_logfmt_tags() -> None:
    assert page.parse_tags(' a=1  b="x \\"y\\"" c= d.e=f=g ') == {
        "a": "1",
        "b": 'x "y"',
        "c": "",
        "d.e": "f=g",
    }
    with pytest.raises(ValueError, match="got 'b'"):
        page.parse_tags("a=1 b")


# -- callbacks ---------------------------------------------------------------------------


def _query(search: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(search).query, keep_blank_values=True)


def test_find_writes_the_form_to_the_url_keeping_the_range_and_closing_the_trace() -> None:
    before = f"?service=shop&from=now-6h&to=now&tz=utc&trace={TRACE_ID}&tags=a%3D1"
    after = callbacks.search_from_form(before, "web", None, "error=true", "", " 2s ", 50.0)
    assert _query(after) == {
        "service": ["web"],
        "tags": ["error=true"],
        "maxDuration": ["2s"],
        "limit": ["50"],
        "from": ["now-6h"],
        "to": ["now"],
        "tz": ["utc"],
    }


def test_clicking_a_scatter_point_opens_its_trace() -> None:
    click = {"points": [{"x": "2024-05-01 12:00", "y": 130, "customdata": TRACE_ID}]}
    opened = callbacks.search_for_point("?service=web&from=now-1h", click)
    assert opened is not None
    assert _query(opened) == {"service": ["web"], "from": ["now-1h"], "trace": [TRACE_ID]}
    assert callbacks.search_for_point("?service=web", {"points": []}) is None
    assert callbacks.search_for_point("?service=web", None) is None


def test_operations_follow_the_service() -> None:
    fake = FakeTraceClient()
    options, value = callbacks.operation_choices(_client(fake), "shop", "auth")
    assert options == [{"label": "POST /cart", "value": "POST /cart"}] and value is None
    assert callbacks.operation_choices(_client(fake), "web", "auth")[1] == "auth"
    fake.fail["operations"] = "down"
    assert callbacks.operation_choices(_client(fake), "web", "auth") == ([], None)


def test_a_clicked_span_shows_its_details_and_is_selected() -> None:
    fake = FakeTraceClient()
    detail = callbacks.span_detail_for(
        _client(fake), f"?service=web&trace={TRACE_ID}", D, now=NOW, browser_offset_min=60
    )
    assert getattr(detail, "data-span-id") == D
    assert "shop: SELECT cart" in text(detail) and "2024-05-01 13:00:00.030" in text(detail)
    gone = callbacks.span_detail_for(_client(fake), "?trace=" + "e" * 32, D, now=NOW)
    assert classes(gone) == {"notice", "bad"}


def test_dye_user_posts_a_30_minute_user_rule_and_links_to_the_dye_page() -> None:
    fake = FakeTraceClient()
    notice = callbacks.dye_user(_client(fake), "42")
    assert fake.added == [{"match": {"kind": "user", "value": "42"}, "ttl_seconds": 1800}]
    assert classes(notice) == {"notice"}
    assert "rule 9f86d081884c7d65" in text(notice) and "30 minutes" in text(notice)
    assert [c.href for c in walk(notice) if getattr(c, "href", None)] == ["/dye"]


def test_dye_user_failures_are_shown_not_raised() -> None:
    fake = FakeTraceClient()
    fake.fail["add_dye_rule"] = "admin token required"
    notice = callbacks.dye_user(_client(fake), "42")
    assert classes(notice) == {"notice", "bad"} and "admin token required" in text(notice)
    too_long = callbacks.dye_user(_client(FakeTraceClient()), "x" * 600)
    assert classes(too_long) == {"notice", "bad"} and "value" in text(too_long)


# -- through Dash ------------------------------------------------------------------------


def _app(fake: FakeTraceClient) -> dash.Dash:
    app = dash.Dash(__name__, suppress_callback_exceptions=True)
    app.layout = shell()
    callbacks.register(app, Context(client=_client(fake), folder=None, clock=lambda: NOW))
    return app


def _dispatch(app: dash.Dash, payload: dict[str, Any]) -> dict[str, Any]:
    """The callback's answer; {} when it changed nothing (204, or no_update)."""
    response = app.server.test_client().post("/_dash-update-component", json=payload)
    if response.status_code == 204:
        return {}
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = cast(dict[str, Any], json.loads(response.get_data(as_text=True)))
    return answer if answer.get("response") else {}


def _prop(component_id: dict[str, str], prop: str) -> str:
    return json.dumps(component_id, separators=(",", ":"), sort_keys=True) + "." + prop


def test_the_registered_span_click_fills_the_details() -> None:
    # assets/tinct.js sets ids.SPAN_SELECTED when a row is clicked.
    app = _app(FakeTraceClient())
    payload = {
        "output": f"{ids.SPAN_DETAIL}.children",
        "outputs": {"id": ids.SPAN_DETAIL, "property": "children"},
        "inputs": [{"id": ids.SPAN_SELECTED, "property": "data", "value": {"span": D, "at": 1}}],
        "state": [
            {"id": ids.URL, "property": "search", "value": f"?trace={TRACE_ID}"},
            {"id": ids.TZ_OFFSET, "property": "data", "value": 0},
        ],
        "changedPropIds": [f"{ids.SPAN_SELECTED}.data"],
    }
    answer = _dispatch(app, payload)["response"]
    assert answer[ids.SPAN_DETAIL]["children"]["props"]["data-span-id"] == D


def test_the_registered_dye_button_dyes_on_a_click_only() -> None:
    fake = FakeTraceClient()
    app = _app(fake)
    button = {"type": ids.DYE_USER, "user": "42"}

    def click(n: int) -> dict[str, Any]:
        return _dispatch(
            app,
            {
                "output": f"{ids.DYE_USER_RESULT}.children",
                "outputs": {"id": ids.DYE_USER_RESULT, "property": "children"},
                "inputs": [[{"id": button, "property": "n_clicks", "value": n}]],
                "state": [],
                "changedPropIds": [_prop(button, "n_clicks")],
            },
        )

    assert click(0) == {} and fake.added == []  # a redrawn button is not a click
    notice = click(1)["response"][ids.DYE_USER_RESULT]["children"]
    assert notice["props"]["className"] == "notice"
    assert fake.added == [{"match": {"kind": "user", "value": "42"}, "ttl_seconds": 1800}]
