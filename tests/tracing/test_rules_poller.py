"""The dye rules poller against a real tinct main app served over HTTP."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.appserver import serve_app
from tests.servers import free_port
from tinct.main_app import create_main_app
from tinct.storage import InMemorySpanStore
from tinct.tracing.dyeing import DyeRule, StaticDyeMatcher
from tinct.tracing.rules import DyeRulesPoller, parse_rules

PATH = "/api/tinct/dye-rules"
T0_NS = 1_714_564_800 * 10**9  # 2024-05-01T12:00:00Z


class Received:
    """Records what the poller hands over; ``wait_for`` blocks until a predicate holds."""

    def __init__(self) -> None:
        self.lists: list[list[DyeRule]] = []
        self._changed = threading.Condition()

    def __call__(self, rules: list[DyeRule]) -> None:
        with self._changed:
            self.lists.append(rules)
            self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = 5.0) -> list[DyeRule]:
        with self._changed:
            assert self._changed.wait_for(
                lambda: bool(self.lists) and predicate(self.lists[-1]), timeout
            ), f"not seen within {timeout}s; last: {self.lists[-1:]}"
            return self.lists[-1]


@pytest.fixture
def server() -> Iterator[str]:
    app = create_main_app(InMemorySpanStore(), clock=lambda: T0_NS)
    with serve_app(app) as base:
        yield base


def add(server: str, **body) -> str:
    r = httpx.post(server + PATH, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_rules_added_and_deleted_show_at_the_next_poll(server: str) -> None:
    received = Received()
    poller = DyeRulesPoller(server, received, interval=0.05).start()
    try:
        received.wait_for(lambda rules: rules == [])
        rule_id = add(
            server, match={"kind": "header", "key": "X-Canary", "value": "on"}, ratio=0.25
        )
        (rule,) = received.wait_for(lambda rules: len(rules) == 1)
        assert rule == DyeRule(rule_id, "header", "x-canary", "on", 0.25, T0_NS / 1e9 + 1800)
        assert httpx.delete(f"{server}{PATH}/{rule_id}").status_code == 204
        received.wait_for(lambda rules: rules == [])
    finally:
        started = time.monotonic()
        poller.stop()
        assert time.monotonic() - started < 1


def test_service_filter_and_matcher_wiring(server: str) -> None:
    add(server, match={"kind": "user", "value": "42"}, service="checkout")
    add(server, match={"kind": "tenant", "value": "acme"}, service="payments")
    add(server, match={"kind": "route", "value": "GET /orders/{id}"})
    matcher = StaticDyeMatcher(clock=lambda: T0_NS / 1e9)
    poller = DyeRulesPoller(server, matcher.replace_rules, service="checkout")
    assert poller.poll_once() is True
    assert sorted(r.kind for r in matcher.rules) == ["route", "user"]
    dye = matcher.match(1, "GET", None, {"enduser.id": "42"})
    assert dye is not None and str(dye) == "user:42"


def test_outage_keeps_last_rules_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    received = Received()
    port = free_port()
    poller = DyeRulesPoller(f"http://127.0.0.1:{port}", received, interval=0.01, timeout=1)
    with caplog.at_level(logging.INFO, logger="tinct.tracing.rules"):
        for _ in range(3):
            assert poller.poll_once() is False
        assert received.lists == []  # nothing handed over: the last rules stay
        failures = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(failures) == 1 and failures[0].exc_info is not None

        app = create_main_app(InMemorySpanStore(), clock=lambda: T0_NS)
        with serve_app(app, port):  # the server comes back
            assert poller.poll_once() is True
        assert received.lists == [[]]
        assert any("works again" in r.message for r in caplog.records)


def test_bad_answers_and_callback_errors_never_raise(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError):
        parse_rules([])
    good = {
        "id": "a",
        "match": {"kind": "user", "key": "", "value": "1"},
        "ratio": 1,
        "expires_at": "2024-05-01T12:30:00.000Z",
    }
    unusable = {**good, "id": "b", "match": {"kind": "ip", "value": "1"}}
    assert [r.id for r in parse_rules({"rules": [good, unusable]})] == ["a"]

    def broken(rules: list[DyeRule]) -> None:
        raise RuntimeError("boom")

    app = create_main_app(InMemorySpanStore(), clock=lambda: T0_NS)
    with serve_app(app) as base:
        poller = DyeRulesPoller(base, broken)
        with caplog.at_level(logging.ERROR, logger="tinct.tracing.rules"):
            assert poller.poll_once() is False
        assert "handing 0 dye rules over failed" in caplog.text
        not_json = DyeRulesPoller(base, lambda r: None)
        not_json.url = base + "/-/healthy"  # a 200 that is not JSON
        assert not_json.poll_once() is False


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="http"):
        DyeRulesPoller("127.0.0.1:3000", lambda r: None)
    with pytest.raises(ValueError, match="interval"):
        DyeRulesPoller("http://x", lambda r: None, interval=0)
