"""Everything a view shows is in its URL, so a link reproduces it.

The query string carries Grafana's parameters where Grafana has them
(``from``, ``to``, ``tz``, ``refresh``, ``var-<name>`` repeated for
multi-value variables, ``orgId`` ignored) and each page's own (``expr`` on
Explore, ``service``/``trace`` on Traces, ``level`` on Topology...).
:class:`ViewState` reads them once, with the defaults, for every page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlencode

from tinct.dashboards.timerange import REFRESH_INTERVALS, TimeRange, time_range

__all__ = [
    "ViewState",
    "parse_search",
    "build_search",
    "with_params",
    "time_query",
    "DEFAULT_FROM",
]

DEFAULT_FROM, DEFAULT_TO = "now-1h", "now"
_VAR = "var-"


def parse_search(search: str | None) -> dict[str, list[str]]:
    """``?a=1&a=2&b=`` → ``{"a": ["1", "2"], "b": [""]}``."""
    return parse_qs((search or "").lstrip("?"), keep_blank_values=True)


def build_search(params: Mapping[str, Sequence[str] | str]) -> str:
    """The query string (with ``?``; "" when empty), keys in a stable order."""
    pairs: list[tuple[str, str]] = []
    for key in sorted(params, key=lambda k: (k.startswith(_VAR), k)):
        value = params[key]
        for v in [value] if isinstance(value, str) else value:
            pairs.append((key, v))
    return "?" + urlencode(pairs) if pairs else ""


def time_query(params: Mapping[str, Sequence[str]]) -> str:
    """The time range of a URL's parameters (``from``, ``to``, ``tz``) as
    ``&k=v`` pairs, to carry it into links to other views."""
    return "".join(f"&{k}={quote(params[k][0])}" for k in ("from", "to", "tz") if params.get(k))


def with_params(search: str | None, **updates: Sequence[str] | str | None) -> str:
    """``search`` with ``updates`` applied (None removes a key). Keys may use
    ``__`` for ``-``: ``var__job=["a"]`` sets ``var-job``."""
    params: dict[str, Sequence[str] | str] = dict(parse_search(search))
    for key, value in updates.items():
        name = key.replace("__", "-")
        if value is None or value == [] or value == "":
            params.pop(name, None)
        else:
            params[name] = value
    return build_search(params)


@dataclass(frozen=True)
class ViewState:
    """The common part of every view's URL, resolved.

    Attributes:
        params: every query parameter.
        range: the time range (``from``/``to`` resolved at ``now``).
        timezone: ``browser`` or ``utc``.
        utc_offset_min: the offset times are drawn in (0 for UTC).
        refresh: the auto-refresh interval text, "" for off.
        error: what was wrong with the URL's time range ("" when fine;
            the default range is used then).
    """

    params: Mapping[str, list[str]]
    range: TimeRange
    timezone: str = "browser"
    utc_offset_min: int = 0
    refresh: str = ""
    error: str = ""
    variables: Mapping[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(
        cls,
        search: str | None,
        now: float,
        browser_offset_min: int | None = None,
        default_from: str = DEFAULT_FROM,
        default_to: str = DEFAULT_TO,
    ) -> ViewState:
        params = parse_search(search)
        tz = params.get("tz", ["browser"])[0].lower()
        timezone = "utc" if tz in ("utc", "z") else "browser"
        offset = 0 if timezone == "utc" else int(browser_offset_min or 0)
        raw_from = params.get("from", [default_from])[0] or default_from
        raw_to = params.get("to", [default_to])[0] or default_to
        error = ""
        try:
            resolved = time_range(raw_from, raw_to, now, utc_offset_min=offset)
        except ValueError as exc:
            error = f"time range: {exc}"
            resolved = time_range(default_from, default_to, now, utc_offset_min=offset)
        refresh = params.get("refresh", [""])[0]
        if refresh not in REFRESH_INTERVALS:
            refresh = ""
        variables = {k[len(_VAR) :]: v for k, v in params.items() if k.startswith(_VAR)}
        return cls(params, resolved, timezone, offset, refresh, error, variables)

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name, [default])[0]

    @property
    def start_ms(self) -> int:
        return int(math.floor(self.range.start * 1000))

    @property
    def end_ms(self) -> int:
        return int(math.ceil(self.range.end * 1000))
