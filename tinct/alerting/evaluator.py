"""Rule groups evaluated on their interval, as Prometheus's rule manager does.

Follows ``rules/group.go`` and ``rules/manager.go`` (Prometheus 3.x):

- the rules of a group run in order at ``t - query_offset``; each rule's
  output goes to the sink before the next rule runs, so a recording rule
  feeds the alerts after it in the same group;
- recording rules rename the result to ``record`` and add the rule's labels
  (group labels first, the rule's own winning); alerting rules advance the
  state machine of :mod:`tinct.alerting.state` and write ``ALERTS`` and
  ``ALERTS_FOR_STATE``;
- a series a rule returned last time and not now gets a staleness marker;
  a failed rule writes nothing (no markers either) and reports ``err``;
- on start, ``for`` progress is restored from ``ALERTS_FOR_STATE``
  (``RestoreForState``, with ``--rules.alert.for-outage-tolerance`` 1h and
  ``--rules.alert.for-grace-period`` 10m), after a second evaluation, and
  until then no ``ALERTS`` series are written;
- a group runs at ``base + offset`` where the offset is a stable hash of the
  group's name and file (``EvalTimestamp``), so groups spread over time;
- a reload keeps the alerts and series of rules that still exist (matched by
  group file and name, then rule name and labels: ``CopyState``) and marks
  the series of removed ones stale.

Transitions to firing and to resolved are written to the alert history.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import pyarrow as pa

from tinct.alerting.for_state import restore_active_at
from tinct.alerting.notifier import OutgoingAlert
from tinct.alerting.rules import AlertingRule, RecordingRule, Rule, RuleGroup
from tinct.alerting.state import (
    INACTIVE,
    RESOLVED_RETENTION_MS,
    Alert,
    Transition,
    needs_sending,
    update_alerts,
)
from tinct.collectors.relabel import RelabelConfig, relabel
from tinct.errors import TinctError
from tinct.metrics import (
    NAME_LABEL,
    STALE_NAN,
    Labels,
    SampleBuilder,
    fingerprint,
)
from tinct.promql.engine import Engine
from tinct.storage.alert_history import AlertEvent, AlertHistoryStore
from tinct.storage.base import MetricReader

__all__ = ["RuleEvaluator", "RuleStatus", "GroupStatus", "Renderer", "Notify"]

logger = logging.getLogger(__name__)

Renderer = Callable[..., str]
Sleep = Callable[[float], Awaitable[None]]


class Notify(Protocol):
    def send(self, alerts: Sequence[OutgoingAlert]) -> None:
        """Queue ``alerts`` for Alertmanager and webhooks; never blocks."""


@dataclass
class RuleStatus:
    """One rule's state, as ``/api/v1/rules`` reports it (a copy)."""

    rule: Rule
    health: str = "unknown"
    last_error: str = ""
    last_evaluation_ms: int = 0
    evaluation_s: float = 0.0
    alerts: list[Alert] = field(default_factory=list)


@dataclass
class GroupStatus:
    """One group's state (a copy): its rules and last evaluation."""

    group: RuleGroup
    interval_s: float
    rules: list[RuleStatus]
    last_evaluation_ms: int = 0
    evaluation_s: float = 0.0


@dataclass
class _Rule:
    rule: Rule
    status: RuleStatus
    previous: dict[Labels, None] = field(default_factory=dict)
    active: dict[Labels, Alert] = field(default_factory=dict)
    restored: bool = True


class _Group:
    def __init__(self, group: RuleGroup, interval_s: float, restored: bool) -> None:
        self.group = group
        self.interval_s = group.interval_s or interval_s
        self.rules = [_Rule(r, RuleStatus(r), restored=restored) for r in group.rules]
        self.lock = threading.Lock()
        # One per group: groups evaluate in parallel threads.
        self.builder = SampleBuilder()
        self.last_evaluation_ms = 0
        self.evaluation_s = 0.0
        # What the API shows, replaced after each evaluation, so reading it
        # never waits for an evaluation (which may take seconds) to end.
        self.published = self.status()

    def status(self) -> GroupStatus:
        """A copy of the group's state. Call with ``lock`` held (or before sharing)."""
        rules = []
        for r in self.rules:
            status = RuleStatus(**r.status.__dict__)
            status.alerts = [a.copy() for a in r.active.values() if a.state != INACTIVE]
            rules.append(status)
        return GroupStatus(
            self.group, self.interval_s, rules, self.last_evaluation_ms, self.evaluation_s
        )

    def publish(self) -> None:
        """Make the current state what :meth:`RuleEvaluator.groups` returns."""
        self.published = self.status()

    @property
    def key(self) -> tuple[str, str]:
        return (self.group.file, self.group.name)

    def offset_ms(self) -> int:
        """Prometheus's ``EvalTimestamp`` offset: a stable hash of name and file."""
        digest = hashlib.blake2b(f"{self.group.name}\xff{self.group.file}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "little") % max(1, int(self.interval_s * 1000))


def _rule_key(rule: Rule) -> tuple[str, Labels]:
    name = rule.record if isinstance(rule, RecordingRule) else rule.alert
    return name, tuple(sorted(rule.labels.items()))


class RuleEvaluator:
    """Evaluates rule groups against ``engine`` and writes their output to ``sink``.

    Args:
        engine: answers the rules' queries (and template ``query`` calls).
        groups: the groups, in rule-file order.
        sink: takes a SAMPLE_SCHEMA table and writes it synchronously (the
            next rule's query must see it), e.g. ``store.write_samples``.
        external_labels: added to alerts sent (not to the series written),
            and ``$externalLabels`` in templates.
        external_url: ``$externalURL`` and the base of ``generatorURL``.
        alert_relabel_configs: applied to alerts sent, after external labels.
        clock: seconds since the epoch.
        default_interval_s: ``global.evaluation_interval``.
        resend_delay_s: ``--rules.alert.resend-delay``.
        resolved_retention_s: how long resolved alerts are kept and re-sent.
        notifier: where alerts go (Alertmanager, webhooks); None for nowhere.
        history: where transitions are recorded; None for nowhere.
        restore_from: when given, ``run`` restores ``for`` state from this
            store after each group's second evaluation, and no ``ALERTS``
            series are written until then.
        render: the template expander (``tinct.alerting.templates.render``).
        sleep: awaits a number of seconds (``asyncio.sleep``).

    Threading: :meth:`evaluate`, :meth:`reload`, :meth:`restore` and
    :meth:`groups` may be called from any thread; one group evaluates at a
    time, and readers wait for a running evaluation of that group.
    """

    def __init__(
        self,
        engine: Engine,
        groups: Sequence[RuleGroup],
        *,
        sink: Callable[[pa.Table], None],
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        alert_relabel_configs: Sequence[RelabelConfig] = (),
        clock: Callable[[], float] = time.time,
        default_interval_s: float = 60.0,
        resend_delay_s: float = 60.0,
        resolved_retention_s: float = RESOLVED_RETENTION_MS / 1000,
        notifier: Notify | None = None,
        history: AlertHistoryStore | None = None,
        restore_from: MetricReader | None = None,
        render: Renderer | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if render is None:
            from tinct.alerting.templates import render as default_render

            render = default_render
        self._engine = engine
        self._sink = sink
        self._external_labels = dict(external_labels or {})
        self._external_url = external_url.rstrip("/")
        self._relabel = tuple(alert_relabel_configs)
        self._clock = clock
        self._default_interval_s = default_interval_s
        self._resend_delay_ms = int(resend_delay_s * 1000)
        self._resolved_retention_ms = int(resolved_retention_s * 1000)
        self._notifier = notifier
        self._history = history
        self._restore_from = restore_from
        self._render = render
        self._sleep = sleep
        self._lock = threading.Lock()
        self._groups = [_Group(g, default_interval_s, restore_from is None) for g in groups]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.failures = 0

    # -- state for the API ---------------------------------------------------------

    def groups(self) -> list[GroupStatus]:
        """A copy of every group's state as of its last evaluation, in order.

        Never waits for an evaluation in progress.
        """
        with self._lock:
            groups = list(self._groups)
        return [g.published for g in groups]

    # -- evaluation ----------------------------------------------------------------

    def evaluate(self, group: RuleGroup, t_ms: int) -> None:
        """Evaluate every rule of ``group`` (one of the evaluator's) at ``t_ms``.

        Blocks while the rules' queries run and the sink writes. Rule
        failures are recorded on the rule (``health`` ``err``), not raised.

        Raises:
            KeyError: ``group`` is not one of the evaluator's groups.
        """
        state = self._find(group)
        started = time.monotonic()
        with state.lock:
            for rule in state.rules:
                self._evaluate_rule(state, rule, t_ms)
            state.last_evaluation_ms = t_ms
            state.evaluation_s = time.monotonic() - started
            state.publish()

    def _find(self, group: RuleGroup) -> _Group:
        with self._lock:
            for g in self._groups:
                if g.group is group or g.key == (group.file, group.name):
                    return g
        raise KeyError(f"rule group {group.name!r} of {group.file!r} is not being evaluated")

    def _evaluate_rule(self, group: _Group, rule: _Rule, t_ms: int) -> None:
        started = time.monotonic()
        query_ms = t_ms - int(group.group.query_offset_s * 1000)
        try:
            if isinstance(rule.rule, RecordingRule):
                samples = self._record(rule.rule, group.group, query_ms)
            else:
                samples = self._alert(group, rule, t_ms, query_ms)
            returned: dict[Labels, None] = {}
            for labels, value in samples:
                group.builder.add(labels, query_ms, value)
                returned[labels] = None
            for labels in rule.previous:
                if labels not in returned:
                    group.builder.add(labels, query_ms, STALE_NAN)
            rule.previous = returned
            batch = group.builder.take()
            if batch.num_rows:
                self._sink(batch)
        except Exception as exc:  # noqa: BLE001 - a failing rule must not stop its group
            group.builder.take()
            rule.status.health = "err"
            rule.status.last_error = str(exc) or type(exc).__name__
            self.failures += 1
            if not isinstance(exc, TinctError):
                logger.exception("evaluating rule %s failed", _rule_key(rule.rule)[0])
            else:
                logger.warning("evaluating rule %s failed: %s", _rule_key(rule.rule)[0], exc)
        else:
            rule.status.health = "ok"
            rule.status.last_error = ""
        rule.status.last_evaluation_ms = t_ms
        rule.status.evaluation_s = time.monotonic() - started

    def _query(self, expr: str, query_ms: int) -> list[tuple[dict[str, str], float]]:
        result = self._engine.instant(expr, query_ms)
        if result.result_type == "vector":
            return [(dict(labels), float(point[1])) for labels, point in result.result]
        if result.result_type == "scalar":
            return [({}, float(result.result[1]))]
        raise TinctError("rule result is not a vector or scalar")

    def _record(
        self, rule: RecordingRule, group: RuleGroup, query_ms: int
    ) -> list[tuple[Labels, float]]:
        limit = group.limit
        rule_labels = {**group.labels, **rule.labels}
        out: dict[Labels, float] = {}
        for labels, value in self._query(rule.expr, query_ms):
            labels[NAME_LABEL] = rule.record
            labels.update(rule_labels)
            key = _sorted(labels)
            if key in out:
                raise TinctError(
                    "vector contains metrics with the same labelset after applying rule labels"
                )
            out[key] = value
        if limit > 0 and len(out) > limit:
            raise TinctError(f"exceeded limit of {limit} with {len(out)} series")
        return list(out.items())

    def _alert(
        self, group: _Group, rule: _Rule, t_ms: int, query_ms: int
    ) -> list[tuple[Labels, float]]:
        spec = rule.rule
        assert isinstance(spec, AlertingRule)
        rule_labels = {**group.group.labels, **spec.labels}
        results: dict[Labels, tuple[float, dict[str, str]]] = {}
        for metric, value in self._query(spec.expr, query_ms):
            expand = self._expander(spec, metric, value, t_ms)
            labels = {k: v for k, v in metric.items() if k != NAME_LABEL}
            for name, text in rule_labels.items():
                labels[name] = expand(text)
            labels["alertname"] = spec.alert
            annotations = {name: expand(text) for name, text in spec.annotations.items()}
            key = _sorted(labels)
            if key in results:
                raise TinctError(
                    "vector contains metrics with the same labelset after applying alert labels"
                )
            results[key] = (value, annotations)
        count, transitions = update_alerts(
            rule.active,
            results,
            t_ms,
            hold_ms=int(spec.for_s * 1000),
            keep_firing_for_ms=int(spec.keep_firing_for_s * 1000),
            resolved_retention_ms=self._resolved_retention_ms,
        )
        limit = group.group.limit
        if limit > 0 and count > limit:
            rule.active.clear()
            raise TinctError(f"exceeded limit of {limit} with {count} alerts")
        self._record_history(spec, transitions, t_ms)
        self._send(group, spec, rule, t_ms)
        samples: list[tuple[Labels, float]] = []
        if rule.restored:
            for alert in rule.active.values():
                if alert.state == INACTIVE:
                    continue
                base = dict(alert.labels)
                samples.append(
                    (_sorted({**base, NAME_LABEL: "ALERTS", "alertstate": alert.state}), 1.0)
                )
                samples.append(
                    (
                        _sorted({**base, NAME_LABEL: "ALERTS_FOR_STATE"}),
                        float(alert.active_at_ms // 1000),
                    )
                )
        return samples

    def _expander(
        self, rule: AlertingRule, metric: dict[str, str], value: float, t_ms: int
    ) -> Callable[[str], str]:
        def query(expr: str) -> list[Any]:
            return [(labels, (t_ms, v)) for labels, v in self._query(expr, t_ms)]

        def expand(text: str) -> str:
            if "{{" not in text:
                return text
            try:
                return self._render(
                    text,
                    labels=metric,
                    value=value,
                    external_labels=self._external_labels,
                    external_url=self._external_url,
                    query=query,
                    timestamp_ms=t_ms,
                    name=f"__alert_{rule.alert}",
                )
            except Exception as exc:  # noqa: BLE001 - Prometheus puts the error in the text
                logger.warning("expanding a template of alert %s failed: %s", rule.alert, exc)
                return f"<error expanding template: {exc}>"

        return expand

    def _record_history(self, rule: AlertingRule, transitions: list[Transition], t_ms: int) -> None:
        if self._history is None or not transitions:
            return
        events = [
            AlertEvent(
                time_ms=t_ms,
                alertname=rule.alert,
                state=tr.state,
                labels=dict(tr.alert.labels),
                value=tr.alert.value,
                annotations=dict(tr.alert.annotations),
                active_at_ms=tr.alert.active_at_ms,
                fingerprint=fingerprint(tr.alert.labels),
            )
            for tr in transitions
        ]
        try:
            self._history.write_alert_events(events)
        except Exception:  # noqa: BLE001 - history must not stop evaluation
            self.failures += 1
            logger.exception("writing %d alert history events failed", len(events))

    def _send(self, group: _Group, spec: AlertingRule, rule: _Rule, t_ms: int) -> None:
        # sendAlerts: valid for four resend delays or intervals, so two lost
        # evaluations or notifications do not resolve the alert in Alertmanager.
        delta_ms = max(self._resend_delay_ms, int(group.interval_s * 1000))
        outgoing = []
        for alert in rule.active.values():
            if not needs_sending(alert, t_ms, self._resend_delay_ms):
                continue
            alert.last_sent_ms = t_ms
            alert.valid_until_ms = t_ms + 4 * delta_ms
            labels = dict(alert.labels)
            for name, value in self._external_labels.items():
                if not labels.get(name):
                    labels[name] = value
            relabelled = relabel(labels, self._relabel) if self._relabel else labels
            if relabelled is None:
                continue
            outgoing.append(
                OutgoingAlert(
                    labels=relabelled,
                    annotations=dict(alert.annotations),
                    starts_at_ms=alert.fired_at_ms,
                    ends_at_ms=alert.resolved_at_ms or alert.valid_until_ms,
                    generator_url=self._generator_url(spec),
                )
            )
        if outgoing and self._notifier is not None:
            self._notifier.send(outgoing)

    def _generator_url(self, rule: AlertingRule) -> str:
        return (
            f"{self._external_url}/alerts?alertname={quote(rule.alert, safe='')}"
            f"&expr={quote(rule.expr, safe='')}"
        )

    # -- restoring `for` state -------------------------------------------------------

    def restore(self, store: MetricReader, now_ms: int, group: RuleGroup | None = None) -> None:
        """Restore the ``for`` progress of active alerts from ``ALERTS_FOR_STATE``.

        Prometheus's ``RestoreForState``: for each alert active now, the last
        ``ALERTS_FOR_STATE`` sample within the outage tolerance (1h) gives
        when it went active and when tinct went down; the downtime is added
        to its active time, and an alert due within the grace period (10m)
        waits the grace period. Rules whose ``for`` is under the grace period
        are not restored. Marks the rules restored (``ALERTS`` are written
        from then on). Blocks on the store.
        """
        states = [self._find(group)] if group is not None else list(self._groups)
        for state in states:
            with state.lock:
                for rule in state.rules:
                    try:
                        self._restore_rule(store, rule, now_ms)
                    except Exception:  # noqa: BLE001 - restoring is best effort
                        logger.exception("restoring the for state of a rule failed")
                    rule.restored = True
                state.publish()

    def _restore_rule(self, store: MetricReader, rule: _Rule, now_ms: int) -> None:
        spec = rule.rule
        if not isinstance(spec, AlertingRule) or rule.restored:
            return
        restore_active_at(store, spec.alert, rule.active, int(spec.for_s * 1000), now_ms)

    # -- reloading ---------------------------------------------------------------------

    def reload(self, groups: Sequence[RuleGroup], now_ms: int | None = None) -> None:
        """Replace the groups, keeping the state of rules that still exist.

        A rule keeps its alerts and series when its group (file and name)
        and its name and labels are the same (Prometheus's ``CopyState``);
        series of rules and groups that are gone get staleness markers at
        ``now_ms`` (default: the clock). Safe from any thread; a running
        :meth:`run` restarts its group loops.
        """
        now = int(self._clock() * 1000) if now_ms is None else now_ms
        new = [_Group(g, self._default_interval_s, True) for g in groups]
        with self._lock:
            old = {g.key: g for g in self._groups}
            stale: list[Labels] = []
            for g in new:
                prev = old.pop(g.key, None)
                if prev is None:
                    continue
                with prev.lock:
                    stale.extend(_copy_state(prev, g))
                g.publish()
            for gone in old.values():
                with gone.lock:
                    for rule in gone.rules:
                        stale.extend(rule.previous)
            self._groups = new
        if stale:
            builder = SampleBuilder()
            for labels in stale:
                builder.add(labels, now, STALE_NAN)
            try:
                self._sink(builder.take())
            except Exception:  # noqa: BLE001 - a reload must not fail on the sink
                logger.exception("writing staleness markers of removed rules failed")
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Evaluate every group on its interval until cancelled.

        Each group's first evaluation is at its next slot (``EvalTimestamp``);
        missed slots are skipped. Evaluations run in worker threads, so the
        event loop is never blocked. :meth:`reload` restarts the group loops.
        """
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        first = True
        try:
            while True:
                with self._lock:
                    groups = list(self._groups)
                restore = first and self._restore_from is not None
                first = False
                tasks = [asyncio.create_task(self._run_group(g, restore)) for g in groups]
                try:
                    await self._wake.wait()
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                self._wake.clear()
        finally:
            self._loop = None
            self._wake = None

    async def _run_group(self, state: _Group, restore: bool) -> None:
        interval_ms = max(1, int(state.interval_s * 1000))
        offset = state.offset_ms()
        now_ms = int(self._clock() * 1000)
        adj = now_ms - offset
        slot = adj - adj % interval_ms + offset + interval_ms
        evaluations = 0
        while True:
            now_ms = int(self._clock() * 1000)
            if slot > now_ms:
                await self._sleep((slot - now_ms) / 1000)
            now_ms = int(self._clock() * 1000)
            if now_ms - slot >= interval_ms:  # missed slots are skipped
                slot += (now_ms - slot) // interval_ms * interval_ms
            try:
                await asyncio.to_thread(self.evaluate, state.group, slot)
            except KeyError:
                return  # reloaded away
            evaluations += 1
            if restore and evaluations == 2 and self._restore_from is not None:
                await asyncio.to_thread(
                    self.restore, self._restore_from, int(self._clock() * 1000), state.group
                )
                restore = False
            slot += interval_ms


def _copy_state(old: _Group, new: _Group) -> list[Labels]:
    """Move rule state from ``old`` into ``new``; return the series to mark stale."""
    new.last_evaluation_ms = old.last_evaluation_ms
    new.evaluation_s = old.evaluation_s
    by_key: dict[tuple[str, Labels], list[_Rule]] = {}
    for rule in old.rules:
        by_key.setdefault(_rule_key(rule.rule), []).append(rule)
    for rule in new.rules:
        matches = by_key.get(_rule_key(rule.rule))
        if not matches:
            continue
        prev = matches.pop(0)
        rule.previous = prev.previous
        rule.status = RuleStatus(
            rule.rule,
            prev.status.health,
            prev.status.last_error,
            prev.status.last_evaluation_ms,
            prev.status.evaluation_s,
        )
        if isinstance(rule.rule, AlertingRule) and isinstance(prev.rule, AlertingRule):
            rule.active = prev.active
    return [labels for left in by_key.values() for rule in left for labels in rule.previous]


def _sorted(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in labels.items() if v != ""))
