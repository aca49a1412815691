"""The demo's load generator: simulated shoppers on the gateway.

Each user is a thread that browses the catalog, looks at its last order, or
places one (reserve, charge, notify downstream), then thinks for an
exponentially distributed while (mean ``think_seconds``) and starts over,
until :meth:`LoadGenerator.stop`. Every request carries ``x-user-id``. The
choices come from ``random.Random`` seeded per user, so a ``--seed`` gives
the same sequence of actions per user (the interleaving across users is the
machine's).

The load generator is the users' side of the demo: it is not instrumented.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from tinct.demo.apps import SKUS

__all__ = ["LoadGenerator", "LoadStats", "user_ids"]

logger = logging.getLogger(__name__)

_TIMEOUT_SECONDS = 15.0


def user_ids(count: int) -> list[str]:
    """The simulated users' ids: ``"1"`` .. ``str(count)``."""
    return [str(n) for n in range(1, count + 1)]


@dataclass
class LoadStats:
    """Requests sent so far, by outcome (``ok``, ``4xx``, ``5xx``, ``failed``),
    and those answered by ``(method, route, status class)``, which is what the
    gateway's RED metrics must count."""

    counts: Counter[str]
    answered: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        parts = [f"{self.total} requests"] + [f"{n} {k}" for k, n in sorted(self.counts.items())]
        return ", ".join(parts)


class LoadGenerator:
    """``users`` simulated shoppers hitting ``gateway_url``.

    Args:
        gateway_url: the gateway's base URL.
        users: how many users.
        seed: seeds each user's choices.
        think_seconds: the mean pause between a user's requests.

    :meth:`start` starts one daemon thread per user; :meth:`stop` asks them
    to finish their current request and joins them (bounded by the request
    timeout). Thread-safe.
    """

    def __init__(
        self, gateway_url: str, users: int, *, seed: int = 0, think_seconds: float = 2.0
    ) -> None:
        self._url = gateway_url.rstrip("/")
        self._users = user_ids(users)
        self._seed = seed
        self._think = think_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._counts: Counter[str] = Counter()
        self._answered: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def start(self) -> None:
        for user in self._users:
            thread = threading.Thread(target=self._run, args=(user,), name=f"user-{user}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = _TIMEOUT_SECONDS) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def stats(self) -> LoadStats:
        with self._lock:
            return LoadStats(Counter(self._counts), Counter(self._answered))

    def _count(self, outcome: str, answered: tuple[str, str, str] | None = None) -> None:
        with self._lock:
            self._counts[outcome] += 1
            if answered is not None:
                self._answered[answered] += 1

    def _run(self, user: str) -> None:
        rng = random.Random(f"{self._seed}:{user}")
        session = requests.Session()
        session.headers["x-user-id"] = user
        last_order: int | None = None
        # Users arrive over the first think time instead of all at once.
        if self._stop.wait(rng.uniform(0, self._think)):
            return
        while not self._stop.is_set():
            roll = rng.random()
            try:
                if roll < 0.45:
                    route = ("GET", "/catalog")
                    response = session.get(self._url + "/catalog", timeout=_TIMEOUT_SECONDS)
                elif roll < 0.65 and last_order is not None:
                    route = ("GET", "/orders/{id}")
                    response = session.get(
                        f"{self._url}/orders/{last_order}", timeout=_TIMEOUT_SECONDS
                    )
                else:
                    route = ("POST", "/orders")
                    body: dict[str, Any] = {"sku": rng.choice(SKUS), "qty": rng.randint(1, 3)}
                    response = session.post(
                        self._url + "/orders", json=body, timeout=_TIMEOUT_SECONDS
                    )
                    if response.status_code == 201:
                        last_order = int(response.json()["id"])
                klass = f"{response.status_code // 100}xx"
                self._count(klass.replace("2xx", "ok"), (*route, klass))
            except (requests.RequestException, ValueError, KeyError) as exc:
                self._count("failed")
                logger.debug("user %s: %s", user, exc)
            if self._stop.wait(rng.expovariate(1 / self._think)):
                break
        session.close()
