"""The dye console: the live rules table, the form, adding and ending rules.

The fake client keeps rules in a dict and validates POST bodies with the
API's own parser (``tinct.dye_api.parse_rule_request``), so a bad form gets
the very message the API would give.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

import dash
import pytest
from dash import html
from dash.development.base_component import Component

from tests.dashboards.tree import by_id, text, walk
from tinct.dashboards import ids
from tinct.dashboards.callbacks import dye as callbacks
from tinct.dashboards.components.shell import shell
from tinct.dashboards.context import Context
from tinct.dashboards.pages import dye as page
from tinct.dashboards.query import QueryError, TinctClient
from tinct.dashboards.urlstate import ViewState
from tinct.dye_api import parse_rule_request, rule_json

NOW = 1_714_564_800.0  # 2024-05-01T12:00:00Z


class FakeDyeClient:
    """The dye rules part of TinctClient, over a dict, with the API's validation."""

    def __init__(self, rules: list[dict[str, Any]] | None = None) -> None:
        self.rules = {r["id"]: r for r in rules or []}
        self.fail_list: str | None = None
        self.added: list[Mapping[str, Any]] = []
        self._next = 0

    def dye_rules(self) -> list[dict[str, Any]]:
        if self.fail_list:
            raise QueryError(self.fail_list)
        return list(self.rules.values())

    def add_dye_rule(self, rule: Mapping[str, Any]) -> dict[str, Any]:
        self.added.append(rule)
        self._next += 1
        try:
            stored = parse_rule_request(dict(rule), f"{self._next:016x}", NOW)
        except Exception as exc:  # the API's 422, as the client raises it
            raise QueryError(str(exc)) from None
        answer = rule_json(stored)
        self.rules[answer["id"]] = answer
        return answer

    def end_dye_rule(self, rule_id: str) -> None:
        if self.rules.pop(rule_id, None) is None:
            raise QueryError(f"id: no live dye rule {rule_id!r}")


def _rule(rule_id: str, kind: str, value: str, key: str = "", **extra: Any) -> dict[str, Any]:
    stored = parse_rule_request(
        {"match": {"kind": kind, "key": key, "value": value}, **extra}, rule_id, NOW - 1
    )
    return rule_json(stored)


def _client(fake: FakeDyeClient) -> TinctClient:
    return cast(TinctClient, fake)


def rows(table_children: Any) -> dict[str, dict[str, str]]:
    """The rules table's rows by ``data-rule``: cell text by cell class."""
    out = {}
    for tr in walk(table_children):
        rule_id = getattr(tr, "data-rule", None)
        if isinstance(tr, html.Tr) and rule_id:
            cells = [td for td in tr.children if getattr(td, "className", None)]
            out[rule_id] = {td.className: text(td) for td in cells}
    return out


def _layout(fake: FakeDyeClient, search: str = "", offset: int = 0) -> Component:
    ctx = Context(client=_client(fake), folder=None, clock=lambda: NOW)
    return cast(Component, page.layout(ctx, ViewState.parse(search, NOW, offset)))


# -- the page ----------------------------------------------------------------------------


def test_the_table_lists_each_live_rule_with_its_id_dye_and_time_left() -> None:
    fake = FakeDyeClient(
        [
            _rule("a1", "user", "42", ttl_seconds=1800),
            _rule("b2", "header", "acme", key="X-Tenant", service="checkout", ratio=0.5),
        ]
    )
    tree = _layout(fake, "?tz=utc")
    table = by_id(tree, ids.DYE_TABLE)
    assert isinstance(table, html.Table)
    found = rows(table.children)
    assert set(found) == {"a1", "b2"}
    assert found["a1"]["rule-id"] == "a1"
    assert found["a1"]["match-value"] == "42"
    assert found["a1"]["dye"] == "user:42"
    assert found["a1"]["service"] == "every"
    assert found["a1"]["ratio"] == "100%"
    assert found["a1"]["created"] == "2024-05-01 11:59:59"
    assert found["a1"]["expires"] == "2024-05-01 12:29:59"
    assert found["a1"]["left"] == "29m 59s"
    assert found["b2"]["dye"] == "header:x-tenant=acme"
    assert found["b2"]["match-key"] == "x-tenant"
    assert found["b2"]["service"] == "checkout"
    assert found["b2"]["ratio"] == "50%"
    # Each row has its End button.
    for rule_id in ("a1", "b2"):
        button = by_id(tree, {"type": ids.DYE_END, "rule": rule_id})
        assert isinstance(button, html.Button) and text(button) == "End"


def test_times_are_in_the_browsers_zone_unless_utc() -> None:
    fake = FakeDyeClient([_rule("a1", "user", "42")])
    table = by_id(_layout(fake, "", offset=120), ids.DYE_TABLE)
    assert rows(table.children)["a1"]["created"] == "2024-05-01 13:59:59"


def test_the_form_has_every_field_and_hides_the_key_until_header() -> None:
    tree = _layout(FakeDyeClient())
    kind = by_id(tree, ids.DYE_KIND)
    assert [o["value"] for o in kind.options] == ["user", "tenant", "route", "header"]
    ttl = by_id(tree, ids.DYE_TTL)
    assert [o["label"] for o in ttl.options] == ["15m", "30m", "1h", "6h", "24h", "7d"]
    assert ttl.value == 1800
    assert by_id(tree, page.DYE_RATIO).value == 1
    for component_id in (ids.DYE_VALUE, ids.DYE_SERVICE, ids.DYE_ADD, ids.DYE_RESULT):
        by_id(tree, component_id)
    assert by_id(tree, ids.DYE_KEY).style == {"display": "none"}
    assert callbacks.key_style("header") == {}
    assert callbacks.key_style("user") == {"display": "none"}


def test_no_rules_and_a_failing_list_say_so_in_the_table() -> None:
    assert "No live dye rules." in text(by_id(_layout(FakeDyeClient()), ids.DYE_TABLE))
    fake = FakeDyeClient()
    fake.fail_list = "store: tinct is starting, the store is not open yet"
    table = by_id(_layout(fake), ids.DYE_TABLE)
    assert "Could not list the dye rules: store: tinct is starting" in text(table)


# -- adding and ending -------------------------------------------------------------------


def test_adding_a_rule_shows_its_id_and_the_refreshed_table() -> None:
    fake = FakeDyeClient([_rule("a1", "user", "7")])
    body = callbacks.rule_request("user", "ignored", " 42 ", "", 1, 900)
    assert body == {
        "match": {"kind": "user", "value": "42"},
        "service": "",
        "ratio": 1.0,
        "ttl_seconds": 900,
    }
    notice, table = callbacks.add_rule(_client(fake), body, NOW, 0)
    assert getattr(notice, "className", None) == "notice"
    assert text(notice) == (
        "Added dye rule 0000000000000001: user:42 on every service, 100% of requests, "
        "for 15m (until 2024-05-01 12:15:00)."
    )
    found = rows(table)
    assert set(found) == {"a1", "0000000000000001"}
    assert found["0000000000000001"]["match-value"] == "42"


def test_a_header_rule_sends_its_key() -> None:
    body = callbacks.rule_request("header", " X-Tenant ", "acme", " api ", "0.25", 3600)
    assert body == {
        "match": {"kind": "header", "key": "X-Tenant", "value": "acme"},
        "service": "api",
        "ratio": 0.25,
        "ttl_seconds": 3600,
    }
    fake = FakeDyeClient()
    notice, table = callbacks.add_rule(_client(fake), body, NOW, 0)
    assert "header:x-tenant=acme on api, 25% of requests" in text(notice)
    assert [r["dye"] for r in rows(table).values()] == ["header:x-tenant=acme"]


def test_an_empty_ratio_or_ttl_is_left_to_the_apis_defaults() -> None:
    body = callbacks.rule_request("route", None, "/pay", None, None, None)
    assert body == {"match": {"kind": "route", "value": "/pay"}, "service": ""}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (("user", "", "", "", 1, 1800), "match.value: must not be empty"),
        (("user", "", "42", "", 2, 1800), "ratio: must be > 0 and <= 1, got 2.0"),
        (("user", "", "42", "", "lots", 1800), 'ratio: must be a number, got "lots"'),
        (("header", "", "acme", "", 1, 1800), "match.key: must not be empty"),
        (("header", "X Tenant", "acme", "", 1, 1800), "match.key: must be an HTTP header name"),
    ],
)
def test_validation_errors_show_the_apis_message_and_add_nothing(
    form: tuple[Any, ...], message: str
) -> None:
    fake = FakeDyeClient([_rule("a1", "user", "7")])
    notice, table = callbacks.add_rule(_client(fake), callbacks.rule_request(*form), NOW, 0)
    assert getattr(notice, "className", None) == "notice bad"
    assert text(notice).startswith(f"Could not add the dye rule: {message}")
    assert set(rows(table)) == {"a1"}


def test_ending_a_rule_removes_it_from_the_table() -> None:
    fake = FakeDyeClient([_rule("a1", "user", "7"), _rule("b2", "user", "8")])
    notice, table = callbacks.end_rule(_client(fake), "a1", NOW, 0)
    assert getattr(notice, "className", None) == "notice"
    assert text(notice) == "Ended dye rule a1."
    assert set(rows(table)) == {"b2"}


def test_ending_an_unknown_rule_shows_the_error() -> None:
    fake = FakeDyeClient([_rule("b2", "user", "8")])
    notice, table = callbacks.end_rule(_client(fake), "a1", NOW, 0)
    assert getattr(notice, "className", None) == "notice bad"
    assert text(notice) == "Could not end dye rule a1: id: no live dye rule 'a1'"
    assert set(rows(table)) == {"b2"}


def test_an_unexpected_failure_is_shown_not_raised() -> None:
    class Broken(FakeDyeClient):
        def add_dye_rule(self, rule: Mapping[str, Any]) -> dict[str, Any]:
            raise RuntimeError("boom")

    notice, _ = callbacks.add_rule(_client(Broken()), {"match": {}}, NOW, 0)
    assert getattr(notice, "className", None) == "notice bad" and "boom" in text(notice)


# -- through Dash ------------------------------------------------------------------------


def _dispatch(app: dash.Dash, payload: dict[str, Any]) -> dict[str, Any]:
    response = app.server.test_client().post("/_dash-update-component", json=payload)
    if response.status_code == 204:
        return {}
    assert response.status_code == 200, response.get_data(as_text=True)
    return cast(dict[str, Any], json.loads(response.get_data(as_text=True)))


def _action_payload(trigger: str, add_clicks: int, end_clicks: int) -> dict[str, Any]:
    end_id = {"type": ids.DYE_END, "rule": "a1"}
    outputs = [
        {"id": ids.DYE_RESULT, "property": "children"},
        {"id": ids.DYE_TABLE, "property": "children"},
    ]
    states = [
        (ids.DYE_KIND, "user"),
        (ids.DYE_KEY, None),
        (ids.DYE_VALUE, "42"),
        (ids.DYE_SERVICE, ""),
        (page.DYE_RATIO, 1),
        (ids.DYE_TTL, 1800),
        (ids.URL, "search"),
        (ids.TZ_OFFSET, "data"),
    ]
    return {
        "output": f"..{ids.DYE_RESULT}.children...{ids.DYE_TABLE}.children..",
        "outputs": outputs,
        "inputs": [
            {"id": ids.DYE_ADD, "property": "n_clicks", "value": add_clicks},
            [{"id": end_id, "property": "n_clicks", "value": end_clicks}],
        ],
        "state": [
            {"id": i, "property": "value", "value": v}
            if i not in (ids.URL, ids.TZ_OFFSET)
            else {"id": i, "property": v, "value": "" if i == ids.URL else 0}
            for i, v in states
        ],
        "changedPropIds": [trigger],
    }


def test_the_registered_callback_adds_on_a_click_and_ignores_new_buttons() -> None:
    fake = FakeDyeClient([_rule("a1", "user", "7")])
    app = dash.Dash(__name__, suppress_callback_exceptions=True)
    app.layout = shell()
    callbacks.register(app, Context(client=_client(fake), folder=None, clock=lambda: NOW))

    end_prop = json.dumps({"rule": "a1", "type": ids.DYE_END}, separators=(",", ":"))
    # A redrawn table's End buttons (n_clicks 0) are not clicks.
    assert _dispatch(app, _action_payload(f"{end_prop}.n_clicks", 1, 0)) == {}
    assert fake.added == [] and set(fake.rules) == {"a1"}

    answer = _dispatch(app, _action_payload(f"{ids.DYE_ADD}.n_clicks", 1, 0))
    notice = answer["response"][ids.DYE_RESULT]["children"]
    assert notice["props"]["className"] == "notice"
    assert "Added dye rule 0000000000000001" in notice["props"]["children"]
    assert len(fake.rules) == 2

    _dispatch(app, _action_payload(f"{end_prop}.n_clicks", 1, 1))
    assert set(fake.rules) == {"0000000000000001"}
