"""The alerting page: rules, active alerts with Silence buttons, silences, history.

The fake client answers in the APIs' shapes (``tinct/alerting/api.py`` and
Alertmanager v2's silences) and records the silences it is asked for.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, cast

import dash
from dash import html
from dash.development.base_component import Component

from tests.dashboards.tree import by_id, text, walk
from tinct.alerting.notifier import alertmanager_fingerprint
from tinct.dashboards import ids
from tinct.dashboards.callbacks import alerting as callbacks
from tinct.dashboards.components.shell import shell
from tinct.dashboards.context import Context
from tinct.dashboards.pages import alerting as page
from tinct.dashboards.query import QueryError, TinctClient
from tinct.dashboards.urlstate import ViewState

NOW = 1_714_564_800.0  # 2024-05-01T12:00:00Z
DOWN = {"alertname": "InstanceDown", "job": "node", "instance": "a:9100", "severity": "page"}
SLOW = {"alertname": "SlowRequests", "service": "checkout"}

GROUPS = [
    {
        "name": "node",
        "file": "rules/node.yml",
        "interval": 30,
        "limit": 0,
        "evaluationTime": 0.001,
        "lastEvaluation": "2024-05-01T11:59:50.000Z",
        "rules": [
            {
                "state": "firing",
                "name": "InstanceDown",
                "duration": 300,
                "keepFiringFor": 0,
                "labels": {"severity": "page"},
                "annotations": {"summary": "{{ $labels.instance }} is down"},
                "query": "up == 0",
                "health": "ok",
                "lastError": "",
                "evaluationTime": 0.001,
                "lastEvaluation": "2024-05-01T11:59:50.000Z",
                "type": "alerting",
                "alerts": [],
            },
            {
                "name": "job:up:sum",
                "labels": {},
                "query": "sum by (job) (up)",
                "health": "err",
                "lastError": "vector cannot contain metrics with the same labelset",
                "evaluationTime": 0.0,
                "lastEvaluation": "2024-05-01T11:59:50.000Z",
                "type": "recording",
            },
        ],
    },
    {
        "name": "services",
        "file": "rules/services.yml",
        "interval": 60,
        "limit": 0,
        "evaluationTime": 0.0,
        "lastEvaluation": "0001-01-01T00:00:00Z",
        "rules": [
            {
                "state": "pending",
                "name": "SlowRequests",
                "duration": 600,
                "keepFiringFor": 0,
                "labels": {},
                "annotations": {"description": "p99 over 1s"},
                "query": "histogram_quantile(0.99, ...) > 1",
                "health": "ok",
                "lastError": "",
                "evaluationTime": 0.0,
                "lastEvaluation": "2024-05-01T11:59:00.000Z",
                "type": "alerting",
                "alerts": [],
            },
            {
                "state": "inactive",
                "name": "ErrorBudgetBurn",
                "duration": 0,
                "keepFiringFor": 0,
                "labels": {},
                "annotations": {},
                "query": "rate(errors[5m]) > 0.1",
                "health": "unknown",
                "lastError": "",
                "evaluationTime": 0.0,
                "lastEvaluation": "0001-01-01T00:00:00Z",
                "type": "alerting",
                "alerts": [],
            },
        ],
    },
]

ALERTS = [
    {
        "labels": SLOW,
        "annotations": {"description": "p99 over 1s"},
        "state": "pending",
        "activeAt": "2024-05-01T11:58:00.000Z",
        "value": "1.5e+00",
    },
    {
        "labels": DOWN,
        "annotations": {"summary": "a:9100 is down"},
        "state": "firing",
        "activeAt": "2024-05-01T11:50:00.000Z",
        "value": "0e+00",
    },
]

HISTORY = [
    {
        "time": "2024-05-01T11:55:00.000Z",
        "alertname": "InstanceDown",
        "state": "firing",
        "labels": DOWN,
        "annotations": {},
        "value": "0e+00",
        "activeAt": "2024-05-01T11:50:00.000Z",
    },
    {
        "time": "2024-05-01T11:40:00.000Z",
        "alertname": "InstanceDown",
        "state": "resolved",
        "labels": DOWN,
        "annotations": {},
        "value": "1e+00",
        "activeAt": "2024-05-01T11:30:00.000Z",
    },
    {
        "time": "2024-05-01T11:45:00.000Z",
        "alertname": "SlowRequests",
        "state": "resolved",
        "labels": SLOW,
        "annotations": {},
        "value": "2.5e-01",
        "activeAt": "2024-05-01T11:20:00.000Z",
    },
]


class FakeAlertsClient:
    """The alerting part of TinctClient: canned answers, silences kept in a list."""

    def __init__(self, managers: list[str] | None = None) -> None:
        self.managers = ["http://am:9093"] if managers is None else managers
        self.groups: list[dict[str, Any]] = GROUPS
        self.active: list[dict[str, Any]] = ALERTS
        self.history: list[dict[str, Any]] = HISTORY
        self.history_error: str | None = None
        self.history_asked: list[tuple[int, int]] = []
        self.silence_error: Exception | None = None
        self.current: list[dict[str, Any]] = [
            {
                "id": "old-expired",
                "status": {"state": "expired"},
                "matchers": [{"name": "job", "value": "x", "isRegex": False, "isEqual": True}],
                "endsAt": "2024-04-30T00:00:00.000Z",
                "createdBy": "bob",
                "comment": "done",
            },
            {
                "id": "s-regex",
                "status": {"state": "active"},
                "matchers": [
                    {"name": "job", "value": "batch.*", "isRegex": True, "isEqual": True},
                    {"name": "env", "value": "prod", "isRegex": False, "isEqual": False},
                ],
                "startsAt": "2024-05-01T10:00:00.000Z",
                "endsAt": "2024-05-01T18:00:00.000Z",
                "createdBy": "alice",
                "comment": "batch maintenance",
            },
        ]
        self.silenced: list[tuple[dict[str, str], str, str, str]] = []

    def rules(self) -> list[dict[str, Any]]:
        return self.groups

    def alerts(self) -> list[dict[str, Any]]:
        return self.active

    def alert_history(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        self.history_asked.append((start_ms, end_ms))
        if self.history_error:
            raise QueryError(self.history_error)
        return self.history

    def alertmanagers(self) -> list[str]:
        return self.managers

    def silences(self) -> list[dict[str, Any]]:
        return self.current if self.managers else []

    def add_silence(
        self, matchers: Mapping[str, str], ends_at: str, created_by: str, comment: str
    ) -> list[str]:
        if self.silence_error:
            raise self.silence_error
        if not self.managers:
            raise QueryError("no Alertmanager is configured (alerting.alertmanagers)")
        self.silenced.append((dict(matchers), ends_at, created_by, comment))
        silence_id = str(uuid.UUID(int=len(self.silenced)))
        self.current.append(
            {
                "id": silence_id,
                "status": {"state": "active"},
                "matchers": [
                    {"name": k, "value": v, "isRegex": False, "isEqual": True}
                    for k, v in sorted(matchers.items())
                ],
                "endsAt": ends_at,
                "createdBy": created_by,
                "comment": comment,
            }
        )
        return [silence_id]


def _client(fake: FakeAlertsClient) -> TinctClient:
    return cast(TinctClient, fake)


def tagged(node: Any, attribute: str) -> dict[str, Component]:
    """The components under ``node`` with a ``data-<attribute>``, by its value."""
    return {
        getattr(c, f"data-{attribute}"): c
        for c in walk(node)
        if getattr(c, f"data-{attribute}", None) is not None
    }


def badges(node: Any) -> list[str]:
    classes = [getattr(c, "className", "") or "" for c in walk(node) if isinstance(c, html.Span)]
    return [css for css in classes if "badge" in css]


def _layout(fake: FakeAlertsClient, search: str = "?tz=utc") -> Component:
    ctx = Context(client=_client(fake), folder=None, clock=lambda: NOW)
    return cast(Component, page.layout(ctx, ViewState.parse(search, NOW, 120)))


# -- the page ----------------------------------------------------------------------------


def test_rules_are_listed_by_group_with_state_and_health() -> None:
    rules = by_id(_layout(FakeAlertsClient()), page.RULES)
    groups = tagged(rules, "group")
    assert list(groups) == ["node", "services"]
    assert "rules/node.yml · every 30s" in text(groups["node"])
    by_rule = tagged(rules, "rule")
    assert list(by_rule) == ["InstanceDown", "job:up:sum", "SlowRequests", "ErrorBudgetBurn"]
    assert badges(by_rule["InstanceDown"]) == ["badge firing", "badge ok"]
    assert badges(by_rule["SlowRequests"]) == ["badge pending", "badge ok"]
    assert badges(by_rule["ErrorBudgetBurn"]) == ["badge inactive", "badge unknown"]
    # A recording rule has no state, only health; its error is shown.
    assert badges(by_rule["job:up:sum"]) == ["badge err"]
    assert "vector cannot contain metrics" in text(by_rule["job:up:sum"])
    shown = text(by_rule["InstanceDown"])
    for part in ("alerting", "up == 0", "5m", "severity=page", "{{ $labels.instance }} is down"):
        assert part in shown


def test_active_alerts_firing_first_each_with_a_silence_button() -> None:
    tree = _layout(FakeAlertsClient())
    section = by_id(tree, page.ALERTS)
    rows = tagged(section, "alert")
    down, slow = alertmanager_fingerprint(DOWN), alertmanager_fingerprint(SLOW)
    assert list(rows) == [down, slow]
    assert badges(rows[down]) == ["badge firing"]
    assert badges(rows[slow]) == ["badge pending"]
    shown = text(rows[down])
    for part in ("InstanceDown", "instance=a:9100", "2024-05-01 11:50:00", "a:9100 is down"):
        assert part in shown
    assert "1.5" in text(rows[slow]) and "p99 over 1s" in text(rows[slow])
    for fp in (down, slow):
        button = by_id(tree, {"type": ids.SILENCE, "alert": fp})
        assert isinstance(button, html.Button) and text(button) == "Silence"
    # The labels each button silences.
    assert by_id(tree, page.ALERT_LABELS).data == {down: DOWN, slow: SLOW}
    assert by_id(tree, page.SILENCE_DURATION).value == "2h"
    by_id(tree, ids.SILENCE_RESULT)


def test_current_silences_are_listed_with_their_matchers() -> None:
    silences = tagged(by_id(_layout(FakeAlertsClient()), page.SILENCES), "silence")
    assert list(silences) == ["s-regex"]  # the expired one is not current
    shown = text(silences["s-regex"])
    for part in ('job=~"batch.*"', 'env!="prod"', "2024-05-01 18:00:00", "alice", "maintenance"):
        assert part in shown


def test_without_an_alertmanager_the_page_says_so() -> None:
    section = by_id(_layout(FakeAlertsClient(managers=[])), page.SILENCES)
    assert "No Alertmanager is configured" in text(section)


def test_history_is_newest_first_in_the_pages_time_zone() -> None:
    fake = FakeAlertsClient()
    search = "?from=2024-05-01T11:00:00Z&to=2024-05-01T12:00:00Z"
    tree = _layout(fake, search)  # browser time, 120 minutes east of UTC
    assert fake.history_asked == [(1_714_561_200_000, 1_714_564_800_000)]
    rows = [
        c for c in walk(by_id(tree, page.HISTORY)) if getattr(c, "className", None) == "transition"
    ]
    assert [text(r.children[0]) for r in rows] == [
        "2024-05-01 13:55:00",
        "2024-05-01 13:45:00",
        "2024-05-01 13:40:00",
    ]
    assert [badges(r) for r in rows] == [["badge firing"], ["badge resolved"], ["badge resolved"]]
    assert "SlowRequests" in text(rows[1]) and "service=checkout" in text(rows[1])


def test_a_failing_section_shows_its_error_and_the_rest_still_draws() -> None:
    fake = FakeAlertsClient()
    fake.history_error = "no alert history store"
    tree = _layout(fake)
    history = by_id(tree, page.HISTORY)
    bad = [c for c in walk(history) if getattr(c, "className", None) == "notice bad"]
    assert [text(c) for c in bad] == ["Could not read the alert history: no alert history store"]
    assert len(tagged(by_id(tree, page.ALERTS), "alert")) == 2


def test_filters_from_the_url_alone() -> None:
    tree = _layout(FakeAlertsClient(), "?state=pending&q=slow")
    assert list(tagged(by_id(tree, page.ALERTS), "alert")) == [alertmanager_fingerprint(SLOW)]
    assert list(tagged(by_id(tree, page.RULES), "rule")) == ["SlowRequests"]
    assert by_id(tree, page.STATE_FILTER).value == "pending"
    assert by_id(tree, page.TEXT_FILTER).value == "slow"
    history = [
        c for c in walk(by_id(tree, page.HISTORY)) if getattr(c, "className", None) == "transition"
    ]
    assert len(history) == 1

    tree = _layout(FakeAlertsClient(), "?state=bogus&q=nothing-matches")
    assert by_id(tree, page.STATE_FILTER).value == ""
    assert "No rules match the filters." in text(by_id(tree, page.RULES))
    assert "No pending or firing alerts." in text(by_id(tree, page.ALERTS))


def test_filter_changes_rewrite_the_url() -> None:
    assert callbacks.filter_search("?from=now-6h", "firing", " disk ") == (
        "?from=now-6h&q=disk&state=firing"
    )
    assert callbacks.filter_search("?q=disk&state=firing", "", "") == ""
    assert callbacks.filter_search("?q=disk&state=firing", "firing", "disk") is None
    assert callbacks.filter_search("", "bogus", None) is None


# -- silencing ---------------------------------------------------------------------------


def test_silence_matches_every_label_and_refreshes_the_silences() -> None:
    fake = FakeAlertsClient()
    notice, section = callbacks.silence_alert(_client(fake), DOWN, "1d", NOW, 0)
    assert fake.silenced == [
        (DOWN, "2024-05-02T12:00:00Z", "tinct", "silenced from tinct: InstanceDown")
    ]
    assert getattr(notice, "className", None) == "notice"
    assert text(notice) == (
        "Silenced InstanceDown for 1d (until 2024-05-02 12:00:00): "
        "silence 00000000-0000-0000-0000-000000000001"
    )
    silences = tagged(section, "silence")
    assert set(silences) == {"s-regex", "00000000-0000-0000-0000-000000000001"}
    assert 'instance="a:9100"' in text(silences["00000000-0000-0000-0000-000000000001"])


def test_silence_defaults_to_two_hours() -> None:
    fake = FakeAlertsClient()
    callbacks.silence_alert(_client(fake), SLOW, None, NOW, 0)
    assert fake.silenced[0][1] == "2024-05-01T14:00:00Z"


def test_silence_without_an_alertmanager_shows_why() -> None:
    fake = FakeAlertsClient(managers=[])
    notice, section = callbacks.silence_alert(_client(fake), DOWN, "2h", NOW, 0)
    assert getattr(notice, "className", None) == "notice bad"
    assert text(notice) == (
        "Could not silence InstanceDown: no Alertmanager is configured (alerting.alertmanagers)"
    )
    assert "No Alertmanager is configured" in text(section)


def test_silence_failures_are_shown_not_raised() -> None:
    fake = FakeAlertsClient()
    fake.silence_error = RuntimeError("connection reset")
    notice, _ = callbacks.silence_alert(_client(fake), DOWN, "2h", NOW, 0)
    assert text(notice) == "Could not silence InstanceDown: connection reset"
    fake.silence_error = QueryError("Failed to create silence: start time must be before end time")
    notice, _ = callbacks.silence_alert(_client(fake), DOWN, "2h", NOW, 0)
    assert getattr(notice, "className", None) == "notice bad"
    assert "start time must be before end time" in text(notice)
    # An alert gone since the page was drawn.
    notice, _ = callbacks.silence_alert(_client(fake), None, "2h", NOW, 0)
    assert getattr(notice, "className", None) == "notice bad"
    assert "no longer listed" in text(notice)
    assert fake.silenced == []


# -- through Dash ------------------------------------------------------------------------


def test_the_registered_callback_silences_the_clicked_alert_only() -> None:
    fake = FakeAlertsClient()
    app = dash.Dash(__name__, suppress_callback_exceptions=True)
    app.layout = shell()
    callbacks.register(app, Context(client=_client(fake), folder=None, clock=lambda: NOW))
    down, slow = alertmanager_fingerprint(DOWN), alertmanager_fingerprint(SLOW)

    def click(clicks: dict[str, int], trigger: str) -> int:
        payload = {
            "output": f"..{ids.SILENCE_RESULT}.children...{page.SILENCES}.children..",
            "outputs": [
                {"id": ids.SILENCE_RESULT, "property": "children"},
                {"id": page.SILENCES, "property": "children"},
            ],
            "inputs": [
                [
                    {"id": {"type": ids.SILENCE, "alert": fp}, "property": "n_clicks", "value": n}
                    for fp, n in clicks.items()
                ]
            ],
            "state": [
                {"id": page.ALERT_LABELS, "property": "data", "value": {down: DOWN, slow: SLOW}},
                {"id": page.SILENCE_DURATION, "property": "value", "value": "1h"},
                {"id": ids.URL, "property": "search", "value": "?tz=utc"},
                {"id": ids.TZ_OFFSET, "property": "data", "value": 60},
            ],
            "changedPropIds": [
                json.dumps({"alert": trigger, "type": ids.SILENCE}, separators=(",", ":"))
                + ".n_clicks"
            ],
        }
        response = app.server.test_client().post("/_dash-update-component", json=payload)
        return response.status_code

    assert click({down: 0, slow: 0}, down) == 204  # buttons drawn anew: no click
    assert click({down: 0, slow: 1}, slow) == 200
    assert [(m, end) for m, end, _, _ in fake.silenced] == [(SLOW, "2024-05-01T13:00:00Z")]
