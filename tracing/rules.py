"""The dye rules client: entry services poll tinct for the live dye rules.

Like Jaeger's remote sampling, a service asks the tinct server every
``interval`` seconds (10 by default) for ``GET /api/tinct/dye-rules
[?service=<name>]`` (``tinct.dye_api``) and hands the rules, as
:class:`~tinct.tracing.dyeing.DyeRule`, to a callback, typically a
``StaticDyeMatcher.replace_rules``. A rule added with ``tinct dye add`` thus
starts dyeing within one interval, and one ended with ``tinct dye rm`` stops
within one interval; an expiring rule stops on time, since the matcher checks
``expires_at`` itself.

When the server is down or answers nonsense the last good rules stay in force
(expired ones stop matching all the same), the failure is logged once per
outage with ``logger.exception``, and polling goes on: background work never
crashes the app (STYLE.md, 7).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from tinct.tracing.dyeing import DyeRule

__all__ = ["DyeRulesPoller", "DEFAULT_POLL_INTERVAL_SECONDS", "parse_rules"]

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_SECONDS = 10.0
_PATH = "/api/tinct/dye-rules"


def _unix(text: Any) -> float:
    if not isinstance(text, str):
        raise ValueError(f"expires_at {text!r} is not an RFC 3339 string")
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"expires_at {text!r} has no time zone")
    return moment.timestamp()


def parse_rules(body: Any) -> list[DyeRule]:
    """The rules of a ``GET /api/tinct/dye-rules`` answer.

    Rules this client cannot use (an unknown kind from a newer server, say)
    are skipped with a warning, not fatal to the rest.

    Raises:
        ValueError: ``body`` is not ``{"rules": [...]}``.
    """
    if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
        raise ValueError('the answer is not {"rules": [...]}')
    rules = []
    for item in body["rules"]:
        try:
            match = item["match"]
            rules.append(
                DyeRule(
                    id=str(item["id"]),
                    kind=match["kind"],
                    key=match.get("key") or "",
                    value=match["value"],
                    ratio=float(item.get("ratio", 1.0)),
                    expires_at=_unix(item["expires_at"]),
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            logger.warning("skipping a dye rule this client can't use (%s): %r", exc, item)
    return rules


class DyeRulesPoller:
    """Polls a tinct server for live dye rules on a daemon thread.

    Args:
        server: tinct's main port, e.g. ``http://127.0.0.1:3000``.
        on_rules: receives every successfully fetched rule list (possibly
            empty), on the poller's thread; exceptions it raises are logged.
        service: ask only for this service's rules (and the service-less ones).
        interval: seconds between polls.
        timeout: seconds one request may take.
        clock: monotonic seconds, to schedule polls (tests pin it).
        wait: waits up to the given seconds, returning True when the poller
            was stopped meanwhile; defaults to the stop event's ``wait``.

    Raises:
        ValueError: ``server`` is not an http(s) URL or ``interval`` is not positive.

    Threading: :meth:`start` and :meth:`stop` from any thread; ``on_rules``
    is only ever called from one thread at a time.
    """

    def __init__(
        self,
        server: str,
        on_rules: Callable[[list[DyeRule]], None],
        *,
        service: str | None = None,
        interval: float = DEFAULT_POLL_INTERVAL_SECONDS,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        if not server.startswith(("http://", "https://")):
            raise ValueError(f"dye rules server {server!r} is not an http(s):// URL")
        if not interval > 0:
            raise ValueError(f"dye rules poll interval must be > 0 seconds, got {interval}")
        query = "?" + urlencode({"service": service}) if service else ""
        self.url = server.rstrip("/") + _PATH + query
        self._on_rules = on_rules
        self._interval = interval
        self._timeout = timeout
        self._clock = clock
        self._stopped = threading.Event()
        self._wait = wait or self._stopped.wait
        self._lock = threading.Lock()
        self._failing = False
        self._thread: threading.Thread | None = None

    def start(self) -> DyeRulesPoller:
        """Start polling (first poll at once) on a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="tinct-dye-rules-poller", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop polling; waits up to ``timeout`` s for an in-flight request."""
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def poll_once(self) -> bool:
        """Fetch the rules once and hand them over; False (logged) on failure. Never raises."""
        with self._lock:
            try:
                rules = self._fetch()
            except Exception:
                if not self._failing:
                    logger.exception(
                        "fetching dye rules from %s failed; keeping the last rules and "
                        "retrying every %g s (logged once until it works again)",
                        self.url,
                        self._interval,
                    )
                self._failing = True
                return False
            if self._failing:
                logger.info("fetching dye rules from %s works again", self.url)
                self._failing = False
            try:
                self._on_rules(rules)
            except Exception:
                logger.exception("handing %d dye rules over failed", len(rules))
                return False
            return True

    def _fetch(self) -> list[DyeRule]:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=self._timeout) as response:
            body = json.loads(response.read())
        return parse_rules(body)

    def _run(self) -> None:
        while not self._stopped.is_set():
            started = self._clock()
            self.poll_once()
            delay = max(0.0, self._interval - (self._clock() - started))
            if self._wait(delay) or self._stopped.is_set():
                return
