"""TinctClient against tinct's real main app, served by uvicorn on a loopback port.

The client is the UI's only way to the data, so each method is held to the
shapes the APIs really answer (``tinct/dye_api.py``, ``tinct/alerting/api.py``)
rather than to hand-written JSON. The Alertmanager behind ``/api/v1/alertmanagers``
is a small fake with Alertmanager v2's silence shapes; a real Alertmanager is
covered elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.appserver import serve_app
from tinct.dashboards.query import QueryError, TinctClient
from tinct.main_app import create_main_app, set_alerting
from tinct.storage import InMemorySpanStore
from tinct.storage.alert_history import AlertEvent
from tinct.storage.memory_alerts import InMemoryAlertHistoryStore

TOKEN = "s3cret"
RULE = {"match": {"kind": "user", "value": "42"}, "ttl_seconds": 900}


class CountingTransport(httpx.HTTPTransport):
    """A real HTTP transport that counts the requests it sends, by path."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


class FakeClock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeAlertmanager:
    """Alertmanager v2's ``/api/v2/silences``: POST creates, GET lists."""

    def __init__(self) -> None:
        self.silences: list[dict[str, Any]] = []

    async def _list(self, request: Request) -> Response:
        return JSONResponse(self.silences)

    async def _create(self, request: Request) -> Response:
        body = await request.json()
        if body["endsAt"] <= body["startsAt"]:
            # Alertmanager's errors are a bare JSON string (its OpenAPI spec).
            return JSONResponse("Failed to create silence: start time must be before end time", 400)
        silence_id = str(uuid.uuid4())
        self.silences.append(
            {"id": silence_id, "status": {"state": "active"}, "updatedAt": body["startsAt"], **body}
        )
        return JSONResponse({"silenceID": silence_id})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v2/silences", self._list, methods=["GET"]),
                Route("/api/v2/silences", self._create, methods=["POST"]),
            ]
        )


@pytest.fixture(scope="module")
def open_app() -> Iterator[str]:
    """tinct's main app without an admin token and without alerting; its URL."""
    with serve_app(create_main_app(InMemorySpanStore())) as base:
        yield base


@pytest.fixture(scope="module")
def guarded_app() -> Iterator[str]:
    """tinct's main app with an admin token on writes; its URL."""
    with serve_app(create_main_app(InMemorySpanStore(), admin_token=TOKEN)) as base:
        yield base


def _client(base: str, **kwargs: Any) -> TinctClient:
    return TinctClient(base, **kwargs)


# -- dye rules -----------------------------------------------------------------------


def test_dye_rule_add_list_end_round_trip(open_app: str) -> None:
    client = _client(open_app)
    added = client.add_dye_rule({**RULE, "service": "checkout", "ratio": 0.5})
    assert added["match"] == {"kind": "user", "key": "", "value": "42"}
    assert added["service"] == "checkout"
    assert added["ratio"] == 0.5
    assert added["ttl_seconds"] == 900
    assert added["expires_at"].endswith("Z")

    listed = {r["id"]: r for r in client.dye_rules()}
    assert listed[added["id"]] == added

    client.end_dye_rule(added["id"])
    assert added["id"] not in {r["id"] for r in client.dye_rules()}
    client.close()


def test_dye_rule_header_key_is_lower_cased(open_app: str) -> None:
    client = _client(open_app)
    added = client.add_dye_rule({"match": {"kind": "header", "key": "X-Tenant", "value": "a"}})
    assert added["match"] == {"kind": "header", "key": "x-tenant", "value": "a"}
    client.end_dye_rule(added["id"])


def test_dye_rule_writes_with_the_admin_token(guarded_app: str) -> None:
    client = _client(guarded_app, admin_token=TOKEN)
    added = client.add_dye_rule(RULE)
    assert added["id"] in {r["id"] for r in client.dye_rules()}
    client.end_dye_rule(added["id"])
    assert added["id"] not in {r["id"] for r in client.dye_rules()}


def test_dye_rule_writes_without_or_with_a_wrong_token_are_refused(guarded_app: str) -> None:
    with pytest.raises(QueryError, match=r"^authorization: this write needs"):
        _client(guarded_app).add_dye_rule(RULE)
    with pytest.raises(QueryError, match=r"^authorization: wrong admin token$"):
        _client(guarded_app, admin_token="nope").add_dye_rule(RULE)
    # Reads never need the token.
    assert isinstance(_client(guarded_app).dye_rules(), list)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"match": {"kind": "user", "value": ""}}, "match.value: must not be empty"),
        ({"match": {"kind": "team", "value": "a"}}, "match.kind: must be one of user, header"),
        ({**RULE, "ratio": 2}, "ratio: must be > 0 and <= 1, got 2"),
        ({**RULE, "ttl_seconds": 0}, "ttl_seconds: must be between 1 and 604800, got 0"),
        ({"match": {"kind": "header", "value": "a"}}, "match.key: is required"),
    ],
)
def test_a_4xx_raises_the_apis_message(open_app: str, rule: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryError) as caught:
        _client(open_app).add_dye_rule(rule)
    assert str(caught.value).startswith(message)


def test_ending_an_unknown_rule_names_it(open_app: str) -> None:
    with pytest.raises(QueryError, match=r"^id: no live dye rule 'feedfacefeedface'$"):
        _client(open_app).end_dye_rule("feedfacefeedface")


# -- alerts ----------------------------------------------------------------------------


def test_alerting_apis_without_rules_or_alertmanagers(open_app: str) -> None:
    client = _client(open_app)
    assert client.rules() == []
    assert client.alerts() == []
    assert client.alertmanagers() == []
    assert client.silences() == []
    with pytest.raises(QueryError, match="no Alertmanager is configured"):
        client.add_silence({"alertname": "Down"}, "2030-01-01T00:00:00Z", "tinct", "test")


def test_alert_history_without_a_store_is_an_error(open_app: str) -> None:
    with pytest.raises(QueryError, match="no alert history store"):
        _client(open_app).alert_history(0, 1_000)


def test_alert_history_and_silences_through_the_alertmanagers_api() -> None:
    history = InMemoryAlertHistoryStore()
    labels = {"alertname": "Down", "job": "api"}
    history.write_alert_events(
        [
            AlertEvent(1_700_000_010_000, "Down", "firing", labels, 1.0, {"summary": "s"}),
            AlertEvent(1_700_000_070_000, "Down", "resolved", labels, 0.0),
            AlertEvent(1_700_009_000_000, "Down", "firing", labels, 1.0),  # after the window
        ]
    )
    manager = FakeAlertmanager()
    app = create_main_app(InMemorySpanStore())
    with serve_app(manager.app()) as am_base, serve_app(app) as base:
        # The notifier's endpoints, as ``tinct up`` passes them.
        set_alerting(app, None, history, None, [am_base + "/api/v2/alerts"])
        client = _client(base)

        events = client.alert_history(1_700_000_000_000, 1_700_000_100_000)
        assert [(e["state"], e["time"]) for e in events] == [
            ("resolved", "2023-11-14T22:14:30.000Z"),
            ("firing", "2023-11-14T22:13:30.000Z"),
        ]
        assert events[1]["labels"] == labels
        assert events[1]["annotations"] == {"summary": "s"}
        assert events[1]["value"] == "1e+00"

        assert client.alertmanagers() == [am_base]
        ids = client.add_silence(labels, "2030-01-01T00:00:00Z", "tinct", "from a test")
        assert len(ids) == 1 and ids[0]
        silences = client.silences()
        assert [s["id"] for s in silences] == ids
        assert silences[0]["matchers"] == [
            {"name": "alertname", "value": "Down", "isRegex": False, "isEqual": True},
            {"name": "job", "value": "api", "isRegex": False, "isEqual": True},
        ]
        assert silences[0]["createdBy"] == "tinct"
        assert silences[0]["endsAt"] == "2030-01-01T00:00:00Z"


def test_an_alertmanager_error_keeps_its_message() -> None:
    manager = FakeAlertmanager()
    app = create_main_app(InMemorySpanStore())
    with serve_app(manager.app()) as am_base, serve_app(app) as base:
        set_alerting(app, None, None, None, [am_base + "/api/v2/alerts"])
        with pytest.raises(QueryError, match="start time must be before end time"):
            _client(base).add_silence({"a": "b"}, "2000-01-01T00:00:00Z", "tinct", "past")


# -- the cache -------------------------------------------------------------------------


def test_identical_gets_share_one_request_until_the_cache_expires(open_app: str) -> None:
    transport = CountingTransport()
    clock = FakeClock()
    client = _client(open_app, transport=transport, clock=clock, cache_seconds=5)

    assert client.alertmanagers() == client.alertmanagers() == []
    assert transport.paths == ["/api/v1/alertmanagers"]

    clock.now += 4.9
    client.alertmanagers()
    assert len(transport.paths) == 1

    clock.now += 0.1
    client.alertmanagers()
    assert len(transport.paths) == 2

    # Other parameters are another question.
    client.get("/api/v1/alertmanagers", {"x": "1"})
    assert len(transport.paths) == 3


def test_live_lists_are_never_cached(open_app: str) -> None:
    transport = CountingTransport()
    client = _client(open_app, transport=transport, clock=FakeClock())
    client.dye_rules()
    client.dye_rules()
    client.rules()
    client.rules()
    assert len(transport.paths) == 4
