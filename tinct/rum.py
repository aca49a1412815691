"""Browser beacon reports, and the user-layer series they add up to.

``tinct/rum.js`` posts reports (the shape is in :mod:`tinct.rum_api`);
:func:`parse_report` checks one against the documented limits and
:class:`BrowserSeries` turns it into samples. Samples are absolute values,
while a report only says "one more page load, one more error", so
:class:`BrowserSeries` keeps every series' cumulative value in memory and
returns the new values: counters and histograms the way a Prometheus client
library keeps them. Its consequences (restart as reset, the ``other`` caps
that bound the series) are documented in :mod:`tinct.rum_api`. The families
are :data:`tinct.catalog.BROWSER`.
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from tinct.metrics import NAME_LABEL, Labels, SampleBuilder, sorted_labels
from tinct.standard import LAYER_LABEL, Layer

__all__ = [
    "RumReport",
    "BrowserSeries",
    "parse_report",
    "clean_text",
    "page_label",
    "ERROR_KINDS",
    "TIMINGS",
    "LOAD_BUCKETS",
    "TIMING_BUCKETS",
    "MAX_EVENTS",
    "MAX_APP_LENGTH",
    "MAX_PAGE_LENGTH",
    "MAX_USER_LENGTH",
    "MAX_TIMING_MS",
    "TRUNCATED_AT",
    "OTHER",
]

ERROR_KINDS = ("js", "resource", "promise")
TIMINGS = ("dns", "connect", "tls", "ttfb", "dom_content_loaded")
# Seconds. Page loads around the Core Web Vitals thresholds (2.5 s good, 4 s poor).
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0)
# Seconds: prometheus_client's default buckets, for the shorter timings.
TIMING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
MAX_EVENTS = 50
MAX_APP_LENGTH = 64
MAX_PAGE_LENGTH = 512
MAX_USER_LENGTH = 128
MAX_TIMING_MS = 3_600_000
MAX_TRANSFER_BYTES = 2**53
# Free text is cut at these lengths (characters) rather than refused.
TRUNCATED_AT = {"message": 1000, "source": 1000, "stack": 4000, "user_agent": 512}
# The label value standing for apps and pages past the caps.
OTHER = "other"

_UINT32_MAX = 2**32 - 1
_LOAD = "browser_page_load_seconds"
_TIMING = "browser_navigation_timing_seconds"
_TRANSFER = "browser_page_transfer_bytes"
_ERRORS = "browser_errors_total"
_APP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*\Z")
_ID_SEGMENT = re.compile(
    r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_REPORT_FIELDS = ("app", "page", "user", "events")
_NAVIGATION_FIELDS = ("type", *TIMINGS, "load", "transfer_size")
_ERROR_FIELDS = ("type", "kind", "message", "source", "line", "col", "stack")


def _invalid(name: str, message: str) -> ValueError:
    return ValueError(f"{name}: {message}")


def clean_text(text: str) -> str:
    """``text`` as valid UTF-8: JSON may carry lone surrogates, Arrow refuses them."""
    return text.encode("utf-8", "replace").decode("utf-8")


def page_label(page: str) -> str:
    """The page as a label: numeric and UUID segments become ``:id``."""
    return "/".join(":id" if _ID_SEGMENT.fullmatch(s) else s for s in page.split("/"))


# -- reports -------------------------------------------------------------------------


@dataclass
class RumReport:
    """One checked report.

    Attributes:
        app, page, user: as sent; ``page`` without query or fragment.
        navigations: per navigation event, its timings in seconds (``load``
            and :data:`TIMINGS`, those sent) and ``transfer_size`` in bytes.
        errors: per error event, ``kind``, ``message``, ``source``, ``stack``
            (truncated) and ``line``, ``col`` (0 when not sent).
    """

    app: str
    page: str
    user: str
    navigations: list[dict[str, float]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _string(body: dict[str, Any], key: str, name: str, *, limit: int, truncate: bool) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _invalid(name, f"must be a string, got {json.dumps(value)[:80]}")
    if len(value) > limit:
        if not truncate:
            raise _invalid(name, f"must be at most {limit} characters, got {len(value)}")
        value = value[:limit]
    return clean_text(value)


def _number(
    event: dict[str, Any], key: str, name: str, *, high: float, integer: bool
) -> float | None:
    value = event.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(name, f"must be a number, got {json.dumps(value)[:80]}")
    if integer and isinstance(value, float) and not value.is_integer():
        raise _invalid(name, f"must be an integer, got {value}")
    if not (math.isfinite(value) and 0 <= value <= high):
        raise _invalid(name, f"must be between 0 and {high:g}, got {value}")
    return float(value)


def _check_fields(body: dict[str, Any], known: tuple[str, ...], prefix: str) -> None:
    for key in body:
        if key not in known:
            raise _invalid(f"{prefix}{key}", f"unknown field (known: {', '.join(known)})")


def _navigation(event: dict[str, Any], prefix: str) -> dict[str, float]:
    _check_fields(event, _NAVIGATION_FIELDS, prefix)
    found: dict[str, float] = {}
    for key in (*TIMINGS, "load"):
        ms = _number(event, key, prefix + key, high=MAX_TIMING_MS, integer=False)
        if ms is not None:
            found[key] = ms / 1000.0
    size = _number(
        event, "transfer_size", prefix + "transfer_size", high=MAX_TRANSFER_BYTES, integer=True
    )
    if size is not None:
        found["transfer_size"] = size
    return found


def _error(event: dict[str, Any], prefix: str) -> dict[str, Any]:
    _check_fields(event, _ERROR_FIELDS, prefix)
    kind = event.get("kind")
    if kind not in ERROR_KINDS:
        raise _invalid(
            prefix + "kind", f"must be one of {', '.join(ERROR_KINDS)}, got {json.dumps(kind)[:80]}"
        )
    found: dict[str, Any] = {"kind": kind}
    for key in ("message", "source", "stack"):
        found[key] = _string(event, key, prefix + key, limit=TRUNCATED_AT[key], truncate=True)
    for key in ("line", "col"):
        number = _number(event, key, prefix + key, high=_UINT32_MAX, integer=True)
        found[key] = int(number or 0)
    return found


def parse_report(body: Any) -> RumReport:
    """The report a POST body holds (the JSON already parsed).

    Raises:
        ValueError: ``"<field>: <what is wrong>"``, e.g. ``events[3].line: ...``.
    """
    if not isinstance(body, dict):
        raise _invalid("body", "must be a JSON object")
    _check_fields(body, _REPORT_FIELDS, "")
    app = _string(body, "app", "app", limit=MAX_APP_LENGTH, truncate=False)
    if not _APP.match(app):
        raise _invalid("app", f"must match [A-Za-z0-9][A-Za-z0-9_.:-]*, got {json.dumps(app)}")
    page = _string(body, "page", "page", limit=MAX_PAGE_LENGTH, truncate=False)
    page = re.split(r"[?#]", page, maxsplit=1)[0]
    if not page.startswith("/"):
        raise _invalid("page", f"must be a path starting with '/', got {json.dumps(page)[:80]}")
    report = RumReport(
        app, page, _string(body, "user", "user", limit=MAX_USER_LENGTH, truncate=False)
    )
    events = body.get("events")
    if not isinstance(events, list):
        raise _invalid("events", "must be a list" if events is not None else "is required")
    if len(events) > MAX_EVENTS:
        raise _invalid("events", f"must hold at most {MAX_EVENTS} events, got {len(events)}")
    for i, event in enumerate(events):
        prefix = f"events[{i}]."
        if not isinstance(event, dict):
            raise _invalid(f"events[{i}]", "must be an object")
        kind = event.get("type")
        if kind == "navigation":
            report.navigations.append(_navigation(event, prefix))
        elif kind == "error":
            report.errors.append(_error(event, prefix))
        else:
            raise _invalid(
                prefix + "type", f"must be navigation or error, got {json.dumps(kind)[:80]}"
            )
    return report


# -- cumulative series ---------------------------------------------------------------


def _le(bound: float) -> str:
    """A bucket bound as prometheus_client writes ``le`` (``1.0``, ``+Inf``)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class BrowserSeries:
    """Every browser series' cumulative value, and the samples a report adds.

    Values live only in this object: a new process starts them again from
    0, which PromQL's ``rate()``/``increase()`` read as a counter reset. A
    series' first sample is preceded by a 0 one millisecond earlier
    (Prometheus's created-timestamp zero ingestion), so ``increase()``
    counts the first report too. Pages are labelled by :func:`page_label`;
    past ``max_pages`` distinct (app, page) pairs a new page is labelled
    :data:`OTHER`, past ``max_apps`` apps a new app is, which bounds the
    series to about 110 per (app, page) pair.

    Args:
        max_pages: distinct (app, page) label pairs kept.
        max_apps: distinct apps kept.

    Raises:
        ValueError: a cap below 1.

    Thread-safe (one lock); :meth:`record` does no I/O.
    """

    def __init__(self, max_pages: int = 200, max_apps: int = 20) -> None:
        if max_pages < 1 or max_apps < 1:
            raise ValueError(f"max_pages and max_apps must be >= 1, got {max_pages}, {max_apps}")
        self._lock = threading.Lock()
        self._values: dict[Labels, float] = {}
        self._apps: set[str] = set()
        self._pages: set[tuple[str, str]] = set()
        self._max_pages = max_pages
        self._max_apps = max_apps
        self._builder = SampleBuilder(max_cached=100_000)
        self._last_ms = 0

    def _where(self, app: str, page: str) -> tuple[str, str]:
        if app not in self._apps:
            if len(self._apps) >= self._max_apps:
                app = OTHER
            else:
                self._apps.add(app)
        page = page_label(page)
        if (app, page) not in self._pages:
            if len(self._pages) >= self._max_pages:
                page = OTHER
            else:
                self._pages.add((app, page))
        return app, page

    def record(self, report: RumReport, now_ms: int) -> pa.Table:
        """Add ``report`` to the values; the touched series' new values as a table.

        A series first seen now also gets a 0 one millisecond earlier.
        """
        with self._lock:
            app, page = self._where(report.app, report.page)
            base = {LAYER_LABEL: Layer.USER.value, "app": app, "page": page}
            touched: dict[Labels, bool] = {}  # labels -> new in this report

            def add(name: str, extra: dict[str, str], delta: float) -> None:
                labels = sorted_labels({**base, **extra, NAME_LABEL: name})
                old = self._values.get(labels)
                self._values[labels] = (old or 0.0) + delta
                touched.setdefault(labels, old is None)

            def observe(name: str, extra: dict[str, str], value: float) -> None:
                buckets = LOAD_BUCKETS if name == _LOAD else TIMING_BUCKETS
                for bound in (*buckets, math.inf):
                    le = {**extra, "le": _le(bound)}
                    add(f"{name}_bucket", le, 1.0 if value <= bound else 0.0)
                add(f"{name}_sum", extra, value)
                add(f"{name}_count", extra, 1.0)

            for nav in report.navigations:
                if "load" in nav:
                    observe(_LOAD, {}, nav["load"])
                for timing in TIMINGS:
                    if timing in nav:
                        observe(_TIMING, {"timing": timing}, nav[timing])
                if "transfer_size" in nav:
                    add(f"{_TRANSFER}_sum", {}, nav["transfer_size"])
                    add(f"{_TRANSFER}_count", {}, 1.0)
            for error in report.errors:
                add(_ERRORS, {"kind": error["kind"]}, 1.0)
            if touched:
                # Strictly increasing: two reports in one millisecond must not
                # write two values of a series at one timestamp.
                ts = max(now_ms, self._last_ms + 1)
                self._last_ms = ts
                for labels, new in touched.items():
                    ref = self._builder.series(labels)
                    if new:
                        self._builder.add_ref(ref, ts - 1, 0.0)
                    self._builder.add_ref(ref, ts, self._values[labels])
            return self._builder.take()
