"""The rule evaluator over a fake clock: Prometheus's alert state machine,
ALERTS series, recording rules, reload, restore, history and the APIs."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import pytest

from tests.asgi import AppClient
from tinct.alerting.api import AlertsAPI
from tinct.alerting.evaluator import RuleEvaluator
from tinct.alerting.notifier import OutgoingAlert
from tinct.alerting.rules import AlertingRule, RecordingRule, RuleGroup
from tinct.collectors.relabel import parse_relabel_configs
from tinct.metrics import SampleBuilder, is_stale
from tinct.promql.engine import Engine
from tinct.storage.alert_history import AlertEventQuery
from tinct.storage.memory_alerts import InMemoryAlertHistoryStore
from tinct.storage.memory_metrics import InMemoryMetricStore

T0 = 1_714_564_800_000  # 2024-05-01T12:00:00Z
MIN = 60_000


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[list[OutgoingAlert]] = []

    def send(self, alerts: Sequence[OutgoingAlert]) -> None:
        self.sent.append(list(alerts))


def put(store: InMemoryMetricStore, labels: dict[str, str], points: dict[int, float]) -> None:
    b = SampleBuilder()
    for t, v in points.items():
        b.add_mapping(labels, t, v)
    store.write_samples(b.take())


def every(start: int, end: int, value: float, step: int = 15_000) -> dict[int, float]:
    return {t: value for t in range(start, end + 1, step)}


class Setup:
    def __init__(
        self, *groups: RuleGroup, store: InMemoryMetricStore | None = None, **kwargs: Any
    ) -> None:
        self.store = store or InMemoryMetricStore()
        self.engine = Engine(self.store)
        self.notifier = FakeNotifier()
        self.history = InMemoryAlertHistoryStore()
        self.now = T0 / 1000
        kwargs.setdefault("notifier", self.notifier)
        kwargs.setdefault("history", self.history)
        self.evaluator = RuleEvaluator(
            self.engine,
            groups,
            sink=self.store.write_samples,
            clock=lambda: self.now,
            **kwargs,
        )

    def query(self, expr: str, t_ms: int) -> dict[tuple[tuple[str, str], ...], float]:
        result = self.engine.instant(expr, t_ms)
        return {tuple(sorted(lb.items())): p[1] for lb, p in result.result}

    def alerts(self) -> list[Any]:
        return [a for g in self.evaluator.groups() for r in g.rules for a in r.alerts]

    def rule(self, i: int = 0, group: int = 0) -> Any:
        return self.evaluator.groups()[group].rules[i]

    def raw(self, name: str) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        from tinct.metrics import Matcher

        series = self.store.series([Matcher("__name__", "=", name)], 0, 2**62)
        table = self.store.samples([s.fingerprint for s in series], 0, 2**62)
        by_fp = {s.fingerprint: tuple(sorted(s.labels.items())) for s in series}
        out: dict[Any, list[tuple[int, float]]] = {}
        for fp, t, v in zip(
            *(table.column(c).to_pylist() for c in table.column_names), strict=True
        ):
            out.setdefault(by_fp[fp], []).append((t, v))
        return out


def down_group(**rule: Any) -> RuleGroup:
    spec = {"alert": "InstanceDown", "expr": "up == 0", **rule}
    return RuleGroup("g", "rules.yml", (AlertingRule(**spec),))


UP = {"__name__": "up", "job": "node", "instance": "a:9100"}


def test_pending_then_firing_after_for_with_alerts_series() -> None:
    group = down_group(for_s=120.0, labels={"severity": "page"})
    s = Setup(group)
    put(s.store, UP, every(T0 - 5 * MIN, T0 + 10 * MIN, 0.0))

    s.evaluator.evaluate(group, T0)
    [alert] = s.alerts()
    assert alert.state == "pending" and alert.active_at_ms == T0
    assert dict(alert.labels) == {
        "alertname": "InstanceDown",
        "instance": "a:9100",
        "job": "node",
        "severity": "page",
    }
    assert s.rule().health == "ok"
    labels = {"alertname": "InstanceDown", "instance": "a:9100", "job": "node", "severity": "page"}
    pending = tuple(sorted({**labels, "__name__": "ALERTS", "alertstate": "pending"}.items()))
    assert s.query("ALERTS", T0) == {pending: 1.0}
    for_state = tuple(sorted({**labels, "__name__": "ALERTS_FOR_STATE"}.items()))
    assert s.query("ALERTS_FOR_STATE", T0) == {for_state: T0 / 1000}
    assert s.notifier.sent == []  # pending alerts are not sent

    s.evaluator.evaluate(group, T0 + MIN)
    assert s.alerts()[0].state == "pending"
    s.evaluator.evaluate(group, T0 + 2 * MIN)
    [alert] = s.alerts()
    assert alert.state == "firing" and alert.fired_at_ms == T0 + 2 * MIN
    firing = tuple(sorted({**labels, "__name__": "ALERTS", "alertstate": "firing"}.items()))
    # The pending series ended with a staleness marker when the alert fired.
    assert s.query("ALERTS", T0 + 2 * MIN) == {firing: 1.0}
    assert is_stale(s.raw("ALERTS")[pending][-1][1])
    [[sent]] = s.notifier.sent
    assert sent.labels == labels
    assert sent.starts_at_ms == T0 + 2 * MIN
    # Valid for 4 × max(resend delay, interval) = 4 minutes.
    assert sent.ends_at_ms == T0 + 6 * MIN
    assert sent.generator_url.startswith("/alerts?alertname=InstanceDown&expr=up%20%3D%3D%200")
    [event] = s.history.find_alert_events(AlertEventQuery(0, 2**62))
    assert (event.state, event.time_ms, event.active_at_ms) == ("firing", T0 + 2 * MIN, T0)

    # Resent only once the resend delay (1m) has passed.
    s.evaluator.evaluate(group, T0 + 2 * MIN + 30_000)
    assert len(s.notifier.sent) == 1
    s.evaluator.evaluate(group, T0 + 3 * MIN + 30_000)
    assert len(s.notifier.sent) == 2


def test_for_zero_fires_at_once_and_resolution_is_kept_and_resent() -> None:
    group = down_group()
    s = Setup(group)
    put(s.store, UP, every(T0 - 5 * MIN, T0, 0.0))
    put(s.store, UP, every(T0 + 15_000, T0 + 40 * MIN, 1.0))
    s.evaluator.evaluate(group, T0)
    assert s.alerts()[0].state == "firing"
    s.evaluator.evaluate(group, T0 + MIN)
    assert s.alerts() == []  # inactive alerts are not listed
    resolved = s.notifier.sent[-1][0]
    assert resolved.ends_at_ms == T0 + MIN
    assert s.query("ALERTS", T0 + MIN) == {}
    states = [e.state for e in s.history.find_alert_events(AlertEventQuery(0, 2**62))]
    assert states == ["resolved", "firing"]
    # Re-sent every resend delay while kept (15 minutes), then forgotten.
    before = len(s.notifier.sent)
    s.evaluator.evaluate(group, T0 + 3 * MIN)
    assert len(s.notifier.sent) == before + 1
    assert s.notifier.sent[-1][0].ends_at_ms == T0 + MIN
    s.evaluator.evaluate(group, T0 + 17 * MIN)
    s.evaluator.evaluate(group, T0 + 20 * MIN)
    assert s.evaluator._groups[0].rules[0].active == {}


def test_a_pending_alert_that_goes_away_is_dropped_without_notification() -> None:
    group = down_group(for_s=600.0)
    s = Setup(group)
    put(s.store, UP, every(T0 - 5 * MIN, T0, 0.0))
    put(s.store, UP, every(T0 + 15_000, T0 + 5 * MIN, 1.0))
    s.evaluator.evaluate(group, T0)
    s.evaluator.evaluate(group, T0 + MIN)
    assert s.alerts() == [] and s.notifier.sent == []
    assert s.history.find_alert_events(AlertEventQuery(0, 2**62)) == []


def test_keep_firing_for() -> None:
    group = down_group(keep_firing_for_s=120.0)
    s = Setup(group)
    put(s.store, UP, every(T0 - 5 * MIN, T0, 0.0))
    put(s.store, UP, every(T0 + 15_000, T0 + 10 * MIN, 1.0))
    s.evaluator.evaluate(group, T0)
    s.evaluator.evaluate(group, T0 + MIN)
    [alert] = s.alerts()
    assert alert.state == "firing" and alert.keep_firing_since_ms == T0 + MIN
    s.evaluator.evaluate(group, T0 + 2 * MIN)
    assert s.alerts()[0].state == "firing"
    s.evaluator.evaluate(group, T0 + 3 * MIN)
    assert s.alerts() == []
    assert s.notifier.sent[-1][0].ends_at_ms == T0 + 3 * MIN


def test_limit_errors_the_rule_and_drops_its_alerts() -> None:
    rule = AlertingRule("InstanceDown", "up == 0")
    group = RuleGroup("g", "rules.yml", (rule,), limit=1)
    s = Setup(group)
    put(s.store, UP, every(T0 - MIN, T0, 0.0))
    s.evaluator.evaluate(group, T0)
    assert s.rule().health == "ok"
    put(s.store, {**UP, "instance": "b:9100"}, every(T0, T0 + MIN, 0.0))
    put(s.store, UP, {T0 + MIN: 0.0})
    s.evaluator.evaluate(group, T0 + MIN)
    status = s.rule()
    assert status.health == "err"
    assert status.last_error == "exceeded limit of 1 with 2 alerts"
    assert status.alerts == []


def test_labels_and_annotations_are_templated() -> None:
    group = down_group(
        labels={"severity": "{{ if gt $value 0.5 }}page{{ else }}ticket{{ end }}"},
        annotations={
            "summary": "{{ $labels.instance }} of {{ $labels.job }} is down ({{ $value }})",
            "link": "{{ $externalURL }}/x?cluster={{ $externalLabels.cluster }}",
            "broken": "{{ .Nope.Deeper }}",
        },
    )
    group = RuleGroup("g", "f", (AlertingRule(**{**group.rules[0].__dict__, "expr": "up + 0.25"}),))
    s = Setup(group, external_labels={"cluster": "eu1"}, external_url="http://tinct:3000/")
    put(s.store, UP, every(T0 - MIN, T0, 0.0))
    s.evaluator.evaluate(group, T0)
    [alert] = s.alerts()
    assert dict(alert.labels)["severity"] == "ticket"
    assert alert.annotations["summary"] == "a:9100 of node is down (0.25)"
    assert alert.annotations["link"] == "http://tinct:3000/x?cluster=eu1"
    assert alert.annotations["broken"].startswith("<error expanding template: ")
    [[sent]] = s.notifier.sent
    assert sent.labels["cluster"] == "eu1"  # external labels go to the notifier only
    assert "cluster" not in dict(alert.labels)
    assert sent.generator_url.startswith("http://tinct:3000/alerts?alertname=InstanceDown")


def test_alert_relabel_configs_drop_and_rewrite_sent_alerts() -> None:
    relabel = parse_relabel_configs(
        [
            {"source_labels": ["instance"], "regex": "b:.*", "action": "drop"},
            {"target_label": "team", "replacement": "ops"},
        ],
        "alerting.alert_relabel_configs",
    )
    group = down_group()
    s = Setup(group, alert_relabel_configs=relabel)
    put(s.store, UP, every(T0 - MIN, T0, 0.0))
    put(s.store, {**UP, "instance": "b:9100"}, every(T0 - MIN, T0, 0.0))
    s.evaluator.evaluate(group, T0)
    [[sent]] = s.notifier.sent
    assert sent.labels["instance"] == "a:9100" and sent.labels["team"] == "ops"
    assert len(s.alerts()) == 2


def test_a_recording_rule_feeds_an_alert_in_the_same_group() -> None:
    group = RuleGroup(
        "g",
        "rules.yml",
        (
            RecordingRule("job:up:sum", "sum by (job) (up)", labels={"tier": "rec"}),
            AlertingRule("JobDown", "job:up:sum == 0"),
        ),
        labels={"team": "ops", "tier": "group"},
    )
    s = Setup(group)
    put(s.store, UP, every(T0 - MIN, T0 + MIN, 0.0))
    s.evaluator.evaluate(group, T0)
    recorded = (("__name__", "job:up:sum"), ("job", "node"), ("team", "ops"), ("tier", "rec"))
    assert s.query("job:up:sum", T0) == {recorded: 0.0}
    [alert] = s.alerts()
    assert dict(alert.labels) == {
        "alertname": "JobDown",
        "job": "node",
        "team": "ops",
        "tier": "group",
    }
    # The recorded series goes stale when its input does.
    put(s.store, UP, {T0 + MIN + 1: float("nan")})
    s.store.write_samples(_stale(UP, T0 + MIN + 2))
    s.evaluator.evaluate(group, T0 + 2 * MIN)
    assert is_stale(s.raw("job:up:sum")[recorded][-1][1])
    assert s.query("job:up:sum", T0 + 2 * MIN) == {}


def _stale(labels: dict[str, str], t: int) -> Any:
    from tinct.metrics import STALE_NAN

    b = SampleBuilder()
    b.add_mapping(labels, t, STALE_NAN)
    return b.take()


def test_a_failing_rule_reports_err_and_the_group_goes_on() -> None:
    group = RuleGroup(
        "g",
        "f",
        (RecordingRule("bad", '"text"'), down_group().rules[0]),
    )
    s = Setup(group)
    put(s.store, UP, every(T0 - MIN, T0, 0.0))
    s.evaluator.evaluate(group, T0)
    assert s.rule(0).health == "err"
    assert s.rule(0).last_error == "rule result is not a vector or scalar"
    assert s.rule(1).health == "ok" and len(s.rule(1).alerts) == 1


def test_reload_keeps_the_state_of_rules_that_still_exist() -> None:
    group = down_group(for_s=300.0)
    other = RuleGroup("h", "rules.yml", (RecordingRule("up:copy", "up"),))
    s = Setup(group, other)
    put(s.store, UP, every(T0 - MIN, T0 + 10 * MIN, 0.0))
    s.evaluator.evaluate(group, T0)
    s.evaluator.evaluate(other, T0)
    # The same rule, with a new annotation, in a reloaded group; "h" is gone.
    changed = down_group(for_s=300.0, annotations={"summary": "down"})
    s.evaluator.reload([changed], now_ms=T0 + 30_000)
    s.evaluator.evaluate(changed, T0 + MIN)
    [alert] = s.alerts()
    assert alert.active_at_ms == T0 and alert.annotations == {"summary": "down"}
    assert s.query("up:copy", T0 + MIN) == {}  # marked stale at the reload
    s.evaluator.evaluate(changed, T0 + 5 * MIN)
    assert s.alerts()[0].state == "firing"
    # A renamed rule starts over.
    renamed = RuleGroup("g", "rules.yml", (AlertingRule("Other", "up == 0", for_s=300.0),))
    s.evaluator.reload([renamed], now_ms=T0 + 6 * MIN)
    s.evaluator.evaluate(renamed, T0 + 7 * MIN)
    assert [a.state for a in s.alerts()] == ["pending"]
    with pytest.raises(KeyError):
        s.evaluator.evaluate(group.__class__("zzz", "f", ()), T0)


def test_restore_for_state_after_a_restart() -> None:
    group = down_group(for_s=30 * 60.0)
    first = Setup(group)
    put(first.store, UP, every(T0 - MIN, T0 + 60 * MIN, 0.0))
    for m in range(11):
        first.evaluator.evaluate(group, T0 + m * MIN)
    assert first.alerts()[0].state == "pending"
    # tinct stops at T0+10m and starts again at T0+15m over the same store.
    second = Setup(group, store=first.store, restore_from=first.store)
    second.evaluator.evaluate(group, T0 + 15 * MIN)
    second.evaluator.evaluate(group, T0 + 16 * MIN)
    # Until restored, no ALERTS series are written (they would overwrite the state).
    [for_state] = first.raw("ALERTS_FOR_STATE").values()
    assert for_state[-1] == (T0 + 10 * MIN, T0 / 1000)
    assert first.query("ALERTS", T0 + 16 * MIN) == {}
    second.evaluator.restore(first.store, T0 + 16 * MIN)
    [alert] = second.alerts()
    # Active since T0, down from T0+10m to T0+16m: shifted by the 6 minutes.
    assert alert.active_at_ms == T0 + 6 * MIN
    second.evaluator.evaluate(group, T0 + 17 * MIN)
    assert second.query("ALERTS_FOR_STATE", T0 + 17 * MIN) == {
        tuple(sorted({**dict(alert.labels), "__name__": "ALERTS_FOR_STATE"}.items())): (
            T0 + 6 * MIN
        )
        / 1000
    }
    second.evaluator.evaluate(group, T0 + 35 * MIN)
    assert second.alerts()[0].state == "pending"
    second.evaluator.evaluate(group, T0 + 36 * MIN)
    assert second.alerts()[0].state == "firing"


def test_restore_waits_the_grace_period_when_nearly_due() -> None:
    group = down_group(for_s=30 * 60.0)
    s = Setup(group)
    put(s.store, UP, every(T0 - MIN, T0 + 60 * MIN, 0.0))
    for m in range(26):
        s.evaluator.evaluate(group, T0 + m * MIN)
    again = RuleEvaluator(
        s.engine, [group], sink=s.store.write_samples, restore_from=s.store, clock=lambda: 0
    )
    again.evaluate(group, T0 + 27 * MIN)
    again.restore(s.store, T0 + 27 * MIN)
    [alert] = [a for g in again.groups() for r in g.rules for a in r.alerts]
    # 5 minutes were left, under the 10-minute grace period: it fires 10m from now.
    assert alert.active_at_ms == T0 + 27 * MIN + 10 * MIN - 30 * MIN


def test_run_evaluates_groups_on_aligned_slots_with_a_fake_clock() -> None:
    group = RuleGroup("g", "f", (RecordingRule("one", "vector(1)"),), interval_s=10.0)
    s = Setup(group)
    seen: list[int] = []
    real_evaluate = s.evaluator.evaluate

    def evaluate(g: RuleGroup, t_ms: int) -> None:
        seen.append(t_ms)
        real_evaluate(g, t_ms)

    s.evaluator.evaluate = evaluate  # type: ignore[method-assign,assignment]

    async def sleep(seconds: float) -> None:
        s.now += seconds
        if len(seen) >= 3:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    s.evaluator._sleep = sleep

    async def main() -> None:
        task = asyncio.create_task(s.evaluator.run())
        for _ in range(200):
            await asyncio.sleep(0.005)
            if len(seen) >= 3:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(seen) >= 3
    offset = s.evaluator._groups[0].offset_ms()
    assert all((t - offset) % 10_000 == 0 for t in seen)
    assert [b - a for a, b in zip(seen, seen[1:], strict=False)] == [10_000] * (len(seen) - 1)
    assert s.query("one", seen[-1]) == {(("__name__", "one"),): 1.0}


def test_the_apis_report_rules_alerts_and_history() -> None:
    group = RuleGroup(
        "g",
        "rules.yml",
        (
            RecordingRule("job:up:sum", "sum by (job) (up)"),
            AlertingRule("InstanceDown", "up == 0", annotations={"summary": "down"}),
        ),
        interval_s=30.0,
    )
    s = Setup(group)
    put(s.store, UP, every(T0 - MIN, T0, 0.0))
    s.evaluator.evaluate(group, T0)
    api = AlertsAPI(lambda: s.evaluator, lambda: s.history, clock=lambda: T0 / 1000 + 60)
    from starlette.applications import Starlette

    client = AppClient(Starlette(routes=api.routes()))
    body = client.get("/api/v1/rules").json()
    [g] = body["data"]["groups"]
    assert (g["name"], g["file"], g["interval"], g["lastEvaluation"]) == (
        "g",
        "rules.yml",
        30.0,
        "2024-05-01T12:00:00.000Z",
    )
    rec, alert = g["rules"]
    assert rec["type"] == "recording" and rec["health"] == "ok"
    assert alert["type"] == "alerting" and alert["state"] == "firing"
    assert alert["alerts"][0]["value"] == "0e+00"
    assert alert["alerts"][0]["activeAt"] == "2024-05-01T12:00:00.000Z"
    only = client.get("/api/v1/rules?type=alert").json()["data"]["groups"][0]["rules"]
    assert [r["name"] for r in only] == ["InstanceDown"]
    assert client.get("/api/v1/rules?type=nope").status_code == 400
    alerts = client.get("/api/v1/alerts").json()["data"]["alerts"]
    assert [(a["labels"]["alertname"], a["state"]) for a in alerts] == [("InstanceDown", "firing")]
    history = client.get("/api/tinct/alerts/history?alertname=InstanceDown").json()["data"]
    assert [(h["state"], h["time"]) for h in history] == [("firing", "2024-05-01T12:00:00.000Z")]
    assert client.get("/api/tinct/alerts/history?start=x").status_code == 400
    assert client.get(f"/api/tinct/alerts/history?start={T0 // 1000 + 1}").json()["data"] == []
    assert math.isfinite(alert["evaluationTime"])
