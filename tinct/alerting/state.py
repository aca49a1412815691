"""One alerting rule's alerts: Prometheus's state machine, without I/O.

Follows ``rules/alerting.go`` (``AlertingRule.Eval``, ``sendAlerts``,
``needsSending``) of Prometheus 3.x:

- a label set the expression returns that has no alert yet becomes a new
  ``pending`` alert, active since this evaluation;
- a ``pending`` alert active for at least ``for`` becomes ``firing`` (at
  once when ``for`` is 0);
- when the expression stops returning it, a ``pending`` alert is deleted
  and a ``firing`` one becomes ``inactive`` with ``resolved_at`` — unless
  ``keep_firing_for`` is set, which keeps it firing that long after the
  condition last held;
- a resolved alert is kept (and re-sent) for 15 minutes, so Alertmanager
  hears of the resolution even across a lost notification;
- an alert needs sending when it is not pending and it resolved since it
  was last sent, or it was last sent more than the resend delay ago.

Times are Unix milliseconds. Not thread-safe; the evaluator serializes.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinct.metrics import Labels

__all__ = [
    "Alert",
    "PENDING",
    "FIRING",
    "INACTIVE",
    "RESOLVED_RETENTION_MS",
    "Transition",
    "update_alerts",
    "needs_sending",
]

PENDING, FIRING, INACTIVE = "pending", "firing", "inactive"
# Prometheus's resolvedRetention.
RESOLVED_RETENTION_MS = 15 * 60 * 1000


@dataclass
class Alert:
    """One alert of a rule.

    Attributes:
        labels: sorted labels, ``alertname`` included (the alert's identity).
        annotations: expanded annotations, as of the last evaluation that
            returned the alert.
        state: ``pending``, ``firing`` or ``inactive`` (resolved, kept for
            the retention period).
        value: the expression's value at the last evaluation returning it.
        active_at_ms: when it became pending.
        fired_at_ms: when it became firing (0 if it has not).
        resolved_at_ms: when it resolved (0 while active).
        last_sent_ms: when it was last handed to the notifier.
        valid_until_ms: the ``endsAt`` sent for an unresolved alert.
        keep_firing_since_ms: when the condition stopped while
            ``keep_firing_for`` keeps it firing (0 otherwise).
    """

    labels: Labels
    annotations: dict[str, str]
    state: str
    value: float
    active_at_ms: int
    fired_at_ms: int = 0
    resolved_at_ms: int = 0
    last_sent_ms: int = 0
    valid_until_ms: int = 0
    keep_firing_since_ms: int = 0

    def copy(self) -> Alert:
        return Alert(**{**self.__dict__, "annotations": dict(self.annotations)})


@dataclass(frozen=True)
class Transition:
    """An alert that became ``firing`` or was ``resolved`` in an evaluation."""

    state: str  # "firing" or "resolved"
    alert: Alert


def update_alerts(
    active: dict[Labels, Alert],
    results: dict[Labels, tuple[float, dict[str, str]]],
    ts_ms: int,
    *,
    hold_ms: int,
    keep_firing_for_ms: int,
    resolved_retention_ms: int = RESOLVED_RETENTION_MS,
) -> tuple[int, list[Transition]]:
    """Advance ``active`` (modified in place) by one evaluation's ``results``.

    Args:
        active: the rule's alerts by labels, from the previous evaluation.
        results: this evaluation's alerts, labels → (value, annotations).
        ts_ms: the evaluation time.
        hold_ms: the rule's ``for``.
        keep_firing_for_ms: the rule's ``keep_firing_for``.
        resolved_retention_ms: how long resolved alerts are kept.

    Returns:
        The number of pending and firing alerts (what the group ``limit``
        counts), and the transitions to firing and to resolved.
    """
    for labels, (value, notes) in results.items():
        alert = active.get(labels)
        if alert is not None and alert.state != INACTIVE:
            alert.value = value
            alert.annotations = notes
            continue
        active[labels] = Alert(labels, notes, PENDING, value, ts_ms)

    transitions: list[Transition] = []
    count = 0
    for labels, alert in list(active.items()):
        if labels not in results:
            keep_firing = False
            if alert.state == FIRING and keep_firing_for_ms > 0:
                if alert.keep_firing_since_ms == 0:
                    alert.keep_firing_since_ms = ts_ms
                keep_firing = ts_ms - alert.keep_firing_since_ms < keep_firing_for_ms
            if alert.state == PENDING or (
                alert.resolved_at_ms and ts_ms - alert.resolved_at_ms > resolved_retention_ms
            ):
                del active[labels]
            if alert.state != INACTIVE and not keep_firing:
                if alert.state == FIRING:
                    transitions.append(Transition("resolved", alert))
                alert.state = INACTIVE
                alert.resolved_at_ms = ts_ms
            if not keep_firing:
                continue
        else:
            alert.keep_firing_since_ms = 0
        count += 1
        if alert.state == PENDING and ts_ms - alert.active_at_ms >= hold_ms:
            alert.state = FIRING
            alert.fired_at_ms = ts_ms
            transitions.append(Transition("firing", alert))
    return count, transitions


def needs_sending(alert: Alert, ts_ms: int, resend_delay_ms: int) -> bool:
    """Whether the notifier should be told about ``alert`` now (``needsSending``)."""
    if alert.state == PENDING:
        return False
    if alert.resolved_at_ms > alert.last_sent_ms:
        return True
    return alert.last_sent_ms + resend_delay_ms < ts_ms
