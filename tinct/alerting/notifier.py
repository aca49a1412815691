"""Sends alerts to Alertmanager (API v2) and to plain webhooks.

Follows Prometheus's ``notifier/notifier.go``: alerts handed to
:meth:`Notifier.send` wait in a bounded queue (the oldest are dropped and
counted when it is full, ``--alertmanager.notification-queue-capacity``
10000); a background thread sends them in batches of at most 256, each
batch to every Alertmanager as ``POST <url>/api/v2/alerts`` with the JSON
Prometheus sends (``labels``, ``annotations``, ``startsAt``, ``endsAt``,
``generatorURL``). The evaluator decides what is sent when (``needsSending``,
``endsAt``); evaluation never waits for a send.

A webhook gets what Alertmanager's webhook receiver would post (docs
"Configuration > webhook_config"): ``version`` "4", ``groupKey``,
``status``, ``receiver``, ``groupLabels``, ``commonLabels``,
``commonAnnotations``, ``externalURL`` and ``alerts`` with ``status``,
``labels``, ``annotations``, ``startsAt``, ``endsAt``, ``generatorURL`` and
``fingerprint`` (Alertmanager's FNV-1a of the sorted labels), one request per
alert name in a batch. It is for setups without an Alertmanager: no grouping
over time, no silences, no deduplication beyond the evaluator's resend delay.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Notifier", "OutgoingAlert", "alertmanager_fingerprint", "webhook_payloads"]

logger = logging.getLogger(__name__)

MAX_BATCH = 256
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = 2**64 - 1


@dataclass(frozen=True)
class OutgoingAlert:
    """An alert as sent: external labels and alert relabelling already applied.

    Attributes:
        labels, annotations: as sent.
        starts_at_ms: when it started firing, Unix milliseconds.
        ends_at_ms: when it resolved, or (while firing) until when it is
            valid if not sent again.
        generator_url: a link back to the rule in tinct.
    """

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at_ms: int = 0
    ends_at_ms: int = 0
    generator_url: str = ""


def _rfc3339(ms: int) -> str:
    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alertmanager_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (``model.LabelSet.Fingerprint``),
    as the 16 hex digits its webhook payload carries."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
            h = ((h ^ 0xFF) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def _alertmanager_json(alert: OutgoingAlert) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": alert.labels,
        "annotations": alert.annotations,
        "generatorURL": alert.generator_url,
    }
    if alert.starts_at_ms:
        out["startsAt"] = _rfc3339(alert.starts_at_ms)
    if alert.ends_at_ms:
        out["endsAt"] = _rfc3339(alert.ends_at_ms)
    return out


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def webhook_payloads(
    alerts: Sequence[OutgoingAlert], *, now_ms: int, external_url: str, receiver: str = "tinct"
) -> list[dict[str, Any]]:
    """Alertmanager webhook payloads for ``alerts``, one per alert name."""
    by_name: dict[str, list[OutgoingAlert]] = {}
    for alert in alerts:
        by_name.setdefault(alert.labels.get("alertname", ""), []).append(alert)
    payloads = []
    for name, group in by_name.items():
        items = []
        for alert in group:
            resolved = bool(alert.ends_at_ms) and alert.ends_at_ms <= now_ms
            items.append(
                {
                    "status": "resolved" if resolved else "firing",
                    "labels": alert.labels,
                    "annotations": alert.annotations,
                    "startsAt": _rfc3339(alert.starts_at_ms),
                    "endsAt": _rfc3339(alert.ends_at_ms) if resolved else "0001-01-01T00:00:00Z",
                    "generatorURL": alert.generator_url,
                    "fingerprint": alertmanager_fingerprint(alert.labels),
                }
            )
        group_labels = {"alertname": name}
        payloads.append(
            {
                "version": "4",
                "groupKey": '{}:{alertname="' + name.replace('"', '\\"') + '"}',
                "truncatedAlerts": 0,
                "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
                "receiver": receiver,
                "groupLabels": group_labels,
                "commonLabels": _common([a.labels for a in group]),
                "commonAnnotations": _common([a.annotations for a in group]),
                "externalURL": external_url,
                "alerts": items,
            }
        )
    return payloads


class Notifier:
    """Queues alerts and sends them from a background thread.

    Args:
        alertmanagers: Alertmanager base URLs (scheme, host, port and path
            prefix, e.g. ``http://am:9093``); ``/api/v2/alerts`` is appended.
        webhooks: URLs that get Alertmanager's webhook payload.
        external_url: tinct's URL (``externalURL`` of webhook payloads).
        clock: seconds since the epoch (decides resolved vs firing for
            webhooks).
        queue_capacity: alerts waiting at most; older ones are dropped.
        timeout_s: per request.

    Threading: :meth:`send` never blocks on the network and may be called
    from any thread. :meth:`start` starts the worker; :meth:`stop` ends it.
    """

    def __init__(
        self,
        alertmanagers: Sequence[str],
        webhooks: Sequence[str] = (),
        *,
        external_url: str = "",
        clock: Callable[[], float] = time.time,
        queue_capacity: int = 10_000,
        timeout_s: float = 10.0,
    ) -> None:
        self._alertmanagers = [u.rstrip("/") + "/api/v2/alerts" for u in alertmanagers]
        self._webhooks = list(webhooks)
        self._external_url = external_url
        self._clock = clock
        self._capacity = queue_capacity
        self._timeout_s = timeout_s
        self._queue: collections.deque[OutgoingAlert] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False
        self.dropped = 0
        self.sent = 0
        self.errors = 0

    @property
    def alertmanagers(self) -> list[str]:
        """The Alertmanager endpoints alerts are pushed to (``.../api/v2/alerts``)."""
        return list(self._alertmanagers)

    def send(self, alerts: Sequence[OutgoingAlert]) -> None:
        """Queue ``alerts``; when the queue is full the oldest are dropped (counted)."""
        if not alerts or not (self._alertmanagers or self._webhooks):
            return
        with self._cond:
            self._queue.extend(alerts)
            over = len(self._queue) - self._capacity
            if over > 0:
                for _ in range(over):
                    self._queue.popleft()
                self.dropped += over
                logger.warning("alert notification queue full, dropped %d alerts", over)
            self._cond.notify()

    def start(self) -> None:
        """Start the sending thread (idempotent)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="tinct-notifier", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (within ``timeout_s``) and end the thread."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify()
        if thread is not None:
            thread.join(timeout_s)
        self._thread = None

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the queue is empty and nothing is being sent."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout_s) as client:
            while True:
                with self._cond:
                    while not self._queue and not self._stopping:
                        self._cond.wait()
                    if not self._queue and self._stopping:
                        return
                    batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                    self._busy = True
                try:
                    self._send_batch(client, batch)
                except Exception:  # noqa: BLE001 - the worker must survive anything
                    self.errors += 1
                    logger.exception("sending %d alerts failed", len(batch))
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()

    def _send_batch(self, client: httpx.Client, batch: list[OutgoingAlert]) -> None:
        body = [_alertmanager_json(a) for a in batch]
        for url in self._alertmanagers:
            self._post(client, url, body, len(batch))
        if self._webhooks:
            now_ms = int(self._clock() * 1000)
            payloads = webhook_payloads(batch, now_ms=now_ms, external_url=self._external_url)
            for url in self._webhooks:
                for payload in payloads:
                    self._post(client, url, payload, len(payload["alerts"]))

    def _post(self, client: httpx.Client, url: str, body: Any, count: int) -> None:
        try:
            response = client.post(url, json=body)
        except httpx.HTTPError as exc:
            self.errors += 1
            logger.warning("sending %d alerts to %s failed: %s", count, url, exc)
            return
        if response.status_code // 100 != 2:
            self.errors += 1
            logger.warning(
                "sending %d alerts to %s failed: HTTP %d %s",
                count,
                url,
                response.status_code,
                response.text[:200],
            )
            return
        self.sent += count
