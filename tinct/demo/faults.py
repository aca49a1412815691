"""The demo's fault schedule: what goes wrong, where, and when.

The schedule is a cycle of ten minutes at ``--speed 1`` that repeats while
the demo runs; ``--speed`` compresses it (60 makes it ten seconds), so a test
sees every fault in a few seconds. The demo writes the schedule and the
moment it started into ``faults.json`` in its working directory; each
service reads that file (again whenever it changes) and asks
:meth:`FaultSchedule.active` on every request, so the services and the demo
agree on the same clock without a control channel.

A latency spike adds its delay as real time (it is not compressed): a slow
call is what the traces should show.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["CYCLE_SECONDS", "DEFAULT_FAULTS", "Fault", "FaultSchedule", "FaultsFile"]

CYCLE_SECONDS = 600.0  # one turn of the schedule at --speed 1


@dataclass(frozen=True)
class Fault:
    """One fault window, in seconds into the cycle at speed 1.

    Attributes:
        service: the service it hits.
        kind: ``latency`` (each request waits ``latency_ms`` more), ``errors``
            (a share ``error_ratio`` of requests fails with 500) or ``down``
            (every request is refused with 503: the dependency is gone).
        start: seconds into the cycle the fault begins.
        end: seconds into the cycle it ends.
    """

    service: str
    kind: str
    start: float
    end: float
    latency_ms: float = 0.0
    error_ratio: float = 0.0

    def describe(self) -> str:
        """One line for the demo's log, e.g. ``inventory: latency spike +400 ms``."""
        if self.kind == "latency":
            return f"{self.service}: latency spike +{self.latency_ms:g} ms"
        if self.kind == "errors":
            return f"{self.service}: error burst ({self.error_ratio:.0%} of requests fail)"
        return f"{self.service}: down (every request refused)"


DEFAULT_FAULTS = (
    Fault("inventory", "latency", 60, 150, latency_ms=400),
    Fault("payments", "errors", 210, 300, error_ratio=0.6),
    Fault("notifications", "down", 360, 450),
)


@dataclass(frozen=True)
class FaultSchedule:
    """The faults, the wall-clock moment the cycle started, and the speed."""

    faults: tuple[Fault, ...]
    started_at: float
    speed: float = 1.0

    def phase(self, now: float | None = None) -> float:
        """Seconds into the cycle (at speed 1) at ``now`` (default: the time now)."""
        elapsed = ((time.time() if now is None else now) - self.started_at) * self.speed
        return max(0.0, elapsed) % CYCLE_SECONDS

    def active(self, service: str | None = None, now: float | None = None) -> list[Fault]:
        """The faults in force at ``now``, only ``service``'s when given."""
        phase = self.phase(now)
        return [
            f
            for f in self.faults
            if f.start <= phase < f.end and (service is None or f.service == service)
        ]

    def write(self, path: Path) -> None:
        """Write the schedule as JSON, atomically (services may be reading it)."""
        body = {
            "started_at": self.started_at,
            "speed": self.speed,
            "cycle_seconds": CYCLE_SECONDS,
            "faults": [asdict(f) for f in self.faults],
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> FaultSchedule:
        """The schedule :meth:`write` wrote. Raises OSError or ValueError."""
        body = json.loads(path.read_text())
        faults = tuple(Fault(**f) for f in body["faults"])
        return cls(faults, float(body["started_at"]), float(body["speed"]))


class FaultsFile:
    """A service's view of ``faults.json``: re-read when the file changes.

    No file, or one that does not parse, means no faults. Thread-safe; one
    ``stat`` per call.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._mtime: int | None = None
        self._schedule = FaultSchedule((), 0.0)
        self._lock = threading.Lock()

    def active(self, service: str) -> list[Fault]:
        """``service``'s faults in force now."""
        if self._path is None:
            return []
        try:
            mtime = self._path.stat().st_mtime_ns
        except OSError:
            return []
        with self._lock:
            if mtime != self._mtime:
                try:
                    self._schedule = FaultSchedule.read(self._path)
                except (OSError, ValueError, KeyError, TypeError):
                    self._schedule = FaultSchedule((), 0.0)
                self._mtime = mtime
            schedule = self._schedule
        return schedule.active(service)
