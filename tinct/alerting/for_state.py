"""Restoring the ``for`` progress of pending alerts after a restart.

Prometheus's ``Group.RestoreForState`` (``rules/group.go``): every active
alert writes ``ALERTS_FOR_STATE`` (value: when it went active, in seconds)
each evaluation, so after a restart the last sample says when the alert
went active and when the process went down. The alert's active time moves
forward by the downtime, so the downtime does not count toward ``for``; an
alert due within the grace period waits the grace period, so a restart
does not fire alerts before rules have seen fresh data. Defaults are
Prometheus's ``--rules.alert.for-outage-tolerance`` (1h) and
``--rules.alert.for-grace-period`` (10m).
"""

from __future__ import annotations

import math

from tinct.alerting.state import Alert
from tinct.metrics import NAME_LABEL, Labels, Matcher
from tinct.storage.base import MetricReader

__all__ = ["OUTAGE_TOLERANCE_MS", "FOR_GRACE_PERIOD_MS", "restore_active_at"]

OUTAGE_TOLERANCE_MS = 3_600_000
FOR_GRACE_PERIOD_MS = 600_000


def restore_active_at(
    store: MetricReader,
    alertname: str,
    active: dict[Labels, Alert],
    hold_ms: int,
    now_ms: int,
    *,
    outage_tolerance_ms: int = OUTAGE_TOLERANCE_MS,
    grace_period_ms: int = FOR_GRACE_PERIOD_MS,
) -> None:
    """Set ``active_at_ms`` of the ``active`` alerts from ``ALERTS_FOR_STATE``.

    Rules whose ``for`` (``hold_ms``) is under the grace period are left
    alone (they would wait no longer than the grace period anyway). Only
    samples within the outage tolerance count; a staleness marker means the
    alert was not active. Blocks on the store; raises what it raises.
    """
    if hold_ms < grace_period_ms or not active:
        return
    start_ms = now_ms - outage_tolerance_ms
    matchers = [Matcher(NAME_LABEL, "=", "ALERTS_FOR_STATE"), Matcher("alertname", "=", alertname)]
    wanted: dict[int, Labels] = {}
    for series in store.series(matchers, start_ms, now_ms):
        labels = tuple(sorted((k, v) for k, v in series.labels.items() if k != NAME_LABEL and v))
        if labels in active:
            wanted[series.fingerprint] = labels
    if not wanted:
        return
    table = store.samples(list(wanted), start_ms, now_ms)
    last: dict[int, tuple[int, float]] = {}
    for fp, t, v in zip(
        table.column("fingerprint").to_pylist(),
        table.column("timestamp_ms").to_pylist(),
        table.column("value").to_pylist(),
        strict=True,
    ):
        last[fp] = (t, v)  # sorted by time: the last one wins
    for fp, (t, v) in last.items():
        if math.isnan(v):  # the staleness marker: it was not active
            continue
        down_ms = (t // 1000) * 1000
        active_ms = int(v) * 1000
        remaining = hold_ms - (down_ms - active_ms)
        if remaining <= 0:
            pass  # it was firing; the next evaluation fires it again
        elif remaining < grace_period_ms:
            active_ms = now_ms + grace_period_ms - hold_ms
        else:
            active_ms += now_ms - down_ms
        active[wanted[fp]].active_at_ms = active_ms
