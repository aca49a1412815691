"""The dye rules API: create, list, end; validation; the admin token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.appserver import serve_app
from tests.asgi import AppClient
from tinct.main_app import create_main_app
from tinct.storage import InMemorySpanStore

PATH = "/api/tinct/dye-rules"
T0_NS = 1_714_564_800 * 10**9  # 2024-05-01T12:00:00Z


class Clock:
    def __init__(self) -> None:
        self.ns = T0_NS

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def client(clock: Clock, token: str | None = None) -> AppClient:
    return AppClient(create_main_app(InMemorySpanStore(), clock=clock, admin_token=token))


def test_create_list_and_end_a_rule(clock: Clock) -> None:
    c = client(clock)
    body = {"match": {"kind": "user", "value": "42"}, "ratio": 0.5, "ttl_seconds": 600}
    r = c.post(PATH, json=body)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert len(rule["id"]) == 16
    assert rule == {
        "id": rule["id"],
        "match": {"kind": "user", "key": "", "value": "42"},
        "service": "",
        "ratio": 0.5,
        "ttl_seconds": 600,
        "created_at": "2024-05-01T12:00:00.000Z",
        "expires_at": "2024-05-01T12:10:00.000Z",
    }
    assert c.get(PATH).json() == {"rules": [rule]}

    assert c.request("DELETE", f"{PATH}/{rule['id']}").status_code == 204
    assert c.get(PATH).json() == {"rules": []}
    gone = c.request("DELETE", f"{PATH}/{rule['id']}")
    assert gone.status_code == 404
    assert gone.json() == {"error": f"id: no live dye rule '{rule['id']}'"}


def test_defaults_and_expiry(clock: Clock) -> None:
    c = client(clock)
    rule = c.post(PATH, json={"match": {"kind": "tenant", "value": "acme"}}).json()
    assert (rule["ratio"], rule["ttl_seconds"]) == (1.0, 1800)
    assert rule["expires_at"] == "2024-05-01T12:30:00.000Z"
    clock.advance(1799.9)
    assert [r["id"] for r in c.get(PATH).json()["rules"]] == [rule["id"]]
    clock.advance(0.1)
    assert c.get(PATH).json()["rules"] == []
    assert c.request("DELETE", f"{PATH}/{rule['id']}").status_code == 404


def test_service_filter(clock: Clock) -> None:
    c = client(clock)
    ids = {}
    for service in ("", "checkout", "payments"):
        clock.advance(1)
        body = {"match": {"kind": "user", "value": "7"}, "service": service}
        ids[service] = c.post(PATH, json=body).json()["id"]
    listed = c.get(PATH, params={"service": "checkout"}).json()["rules"]
    assert [r["id"] for r in listed] == [ids[""], ids["checkout"]]
    assert len(c.get(PATH).json()["rules"]) == 3


def test_header_rules_need_a_header_name(clock: Clock) -> None:
    c = client(clock)
    r = c.post(PATH, json={"match": {"kind": "header", "key": "X-Canary", "value": "1"}})
    assert r.status_code == 201
    assert r.json()["match"] == {"kind": "header", "key": "x-canary", "value": "1"}
    missing = c.post(PATH, json={"match": {"kind": "header", "value": "1"}})
    assert (missing.status_code, missing.json()) == (422, {"error": "match.key: is required"})
    bad = c.post(PATH, json={"match": {"kind": "header", "key": "a b", "value": "1"}})
    assert bad.json() == {"error": 'match.key: must be an HTTP header name, got "a b"'}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ([1], "body: must be a JSON object"),
        ({}, "match: is required"),
        ({"match": "user:42"}, 'match: must be an object, got "user:42"'),
        (
            {"match": {"kind": "ip", "value": "1"}},
            'match.kind: must be one of user, header, route, tenant, got "ip"',
        ),
        ({"match": {"kind": "user"}}, "match.value: is required"),
        ({"match": {"kind": "user", "value": ""}}, "match.value: must not be empty"),
        ({"match": {"kind": "user", "value": 42}}, "match.value: must be a string, got 42"),
        (
            {"match": {"kind": "user", "value": "x" * 513}},
            "match.value: must be at most 512 characters, got 513",
        ),
        (
            {"match": {"kind": "user", "value": "x" * 510}},
            "match.value: the dye user:xxxxxxxxxxxxxxx... would be 515 characters, at most 512",
        ),
        (
            {"match": {"kind": "user", "value": "1", "op": "="}},
            "match.op: unknown field (known: kind, key, value)",
        ),
        (
            {"match": {"kind": "user", "value": "1"}, "ttl": 5},
            "ttl: unknown field (known: match, service, ratio, ttl_seconds)",
        ),
        (
            {"match": {"kind": "user", "value": "1"}, "ratio": 2},
            "ratio: must be > 0 and <= 1, got 2",
        ),
        (
            {"match": {"kind": "user", "value": "1"}, "ratio": 0},
            "ratio: must be > 0 and <= 1, got 0",
        ),
        (
            {"match": {"kind": "user", "value": "1"}, "ratio": "1"},
            'ratio: must be a number, got "1"',
        ),
        (
            {"match": {"kind": "user", "value": "1"}, "ratio": True},
            "ratio: must be a number, got true",
        ),
        (
            {"match": {"kind": "user", "value": "1"}, "ttl_seconds": 0},
            "ttl_seconds: must be between 1 and 604800, got 0",
        ),
        (
            {"match": {"kind": "user", "value": "1"}, "ttl_seconds": 604801},
            "ttl_seconds: must be between 1 and 604800, got 604801",
        ),
        (
            {"match": {"kind": "user", "value": "1"}, "ttl_seconds": 1.5},
            "ttl_seconds: must be an integer, got 1.5",
        ),
        (
            {"match": {"kind": "user", "value": "1"}, "service": 3},
            "service: must be a string, got 3",
        ),
    ],
)
def test_bad_rules_are_422_naming_the_field_and_limit(clock: Clock, body: Any, error: str) -> None:
    r = client(clock).post(PATH, json=body)
    assert (r.status_code, r.json()) == (422, {"error": error})


def test_a_body_that_is_not_json_is_400(clock: Clock) -> None:
    r = client(clock).post(PATH, content=b"{nope")
    assert r.status_code == 400
    assert r.json()["error"].startswith("body: not valid JSON: ")


def test_writes_need_the_admin_token_when_one_is_set(clock: Clock) -> None:
    c = client(clock, token="s3cret")
    body = {"match": {"kind": "user", "value": "42"}}
    missing = c.post(PATH, json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["error"]
    wrong = c.post(PATH, json=body, headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()) == (403, {"error": "authorization: wrong admin token"})
    ok = c.post(PATH, json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 201
    rule_id = ok.json()["id"]
    # Reads stay open; deletes need the token too.
    assert len(c.get(PATH).json()["rules"]) == 1
    assert c.request("DELETE", f"{PATH}/{rule_id}").status_code == 401
    auth = {"Authorization": "bearer s3cret"}
    assert c.request("DELETE", f"{PATH}/{rule_id}", headers=auth).status_code == 204


def test_store_not_open_is_503(clock: Clock) -> None:
    c = AppClient(create_main_app(None, clock=clock))
    r = c.get(PATH)
    assert r.status_code == 503 and r.json()["error"].startswith("store: ")


def test_served_over_real_http(clock: Clock) -> None:
    app = create_main_app(InMemorySpanStore(), clock=clock, admin_token="t")
    with serve_app(app) as base:
        auth = {"Authorization": "Bearer t"}
        body = {"match": {"kind": "route", "value": "GET /orders/{id}"}, "service": "shop"}
        created = httpx.post(base + PATH, json=body, headers=auth)
        assert created.status_code == 201
        assert created.headers["content-type"] == "application/json"
        listed = httpx.get(base + PATH, params={"service": "shop"}).json()["rules"]
        assert listed == [created.json()]
