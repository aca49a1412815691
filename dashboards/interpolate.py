"""Grafana's variable syntax in queries and titles: ``$var``, ``${var:format}``, ``[[var]]``.

Interpolation follows Grafana's ``TemplateSrv.replace``
(``public/app/features/templating/template_srv.ts``): the same pattern finds
references (``\\$(\\w+)`` is greedy, so ``$nodename`` is ``nodename`` and never
``node`` followed by ``name``; a name that is not a variable stays as
written), ``$__all`` becomes the variable's custom "All" value or all of its
options, and values are formatted

* by default as Grafana's Prometheus data source formats them in PromQL
  (``interpolateQueryExpr`` in ``packages/grafana-prometheus/src/datasource.ts``):
  a variable that is neither multi-value nor has "All" is inserted as is
  (only ``\\`` and ``"`` escaped, for the double-quoted string it sits in);
  otherwise each value is regex-escaped for a ``=~"..."`` matcher and
  several are joined as ``(a|b)``;
* with an explicit format as Grafana's format registry does
  (``scenes/src/variables/interpolation/formatRegistry.ts``): ``regex``,
  ``pipe``, ``csv``, ``raw``, ``glob``, ``json``, ``text``, ``queryparam``,
  ``percentencode``, ``singlequote``, ``doublequote``, ``sqlstring``,
  ``distributed``, ``html``, ``join``, ``date``; an unknown format falls back
  to ``glob``, as in Grafana (``lucene`` is not supported: glob).

Built-in variables (``$__interval``, ``$__rate_interval``, ``$__range``,
``$__from``...) come from :func:`builtins_for`.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Collection, Mapping, Sequence
from urllib.parse import quote

from tinct.dashboards.intervals import format_interval, rate_interval
from tinct.dashboards.templating import ALL_VALUE

__all__ = ["builtins_for", "interpolate", "escape_regex", "variable_names"]

# TemplateSrv's variableRegex: $var | [[var:fmt]] | ${var.fieldPath:fmt}; JS \w is ASCII.
_REFERENCE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}", re.ASCII
)
# grafana-data's escapeRegex.
_REGEX_META = re.compile(r"[\\^$*+?.()|\[\]{}/]")
# prometheusSpecialRegexEscape: regex metacharacters, escaped for a double-quoted string.
_PROM_REGEX_META = re.compile(r"[$^*{}\[\]'+?.()|]")
# A value that is already a whole label matcher (job="x") is left alone.
_PROM_MATCHER = re.compile(r"\w+(=|!=|=~|!~)\".*\"")
# What "All" expands to when the caller gave no options to expand it to.
_ALL_FALLBACK = ".*"


def variable_names(text: str) -> set[str]:
    """The names ``text`` refers to (``$a``, ``${b:csv}``, ``[[c]]``)."""
    return {m.group(1) or m.group(2) or m.group(4) for m in _REFERENCE.finditer(text)}


def escape_regex(value: str) -> str:
    """grafana-data's ``escapeRegex``: ``a.b`` -> ``a\\.b``."""
    return _REGEX_META.sub(lambda m: "\\" + m.group(0), value)


def _prom_escape(value: str) -> str:
    # prometheusRegularEscape (with Grafana's prometheusSpecialCharsInLabelValues,
    # correct for the double-quoted strings PromQL label values sit in).
    if _PROM_MATCHER.fullmatch(value):
        return value
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _prom_regex_escape(value: str) -> str:
    # prometheusSpecialRegexEscape: a.b -> a\\.b, i.e. the regex a\.b in a PromQL string.
    value = value.replace("\\", "\\\\\\\\").replace('"', '\\\\\\"')
    return _PROM_REGEX_META.sub(lambda m: "\\\\" + m.group(0), value)


def _uri(value: str) -> str:
    # encodeURIComponentStrict: RFC 3986 unreserved characters only.
    return quote(value, safe="-_.~")


def builtins_for(
    start_s: float, end_s: float, interval_s: float, scrape_interval_s: float = 15.0
) -> dict[str, str]:
    """Grafana's global variables for one panel query.

    Args:
        start_s, end_s: the time range, Unix seconds.
        interval_s: the panel interval (``interval_for``).
        scrape_interval_s: the data source's scrape interval, for ``$__rate_interval``.

    Returns:
        ``__interval``, ``__interval_ms``, ``__rate_interval``,
        ``__rate_interval_ms``, ``__range`` (``3600s``), ``__range_s``,
        ``__range_ms``, ``__from`` and ``__to`` (Unix ms), by name without ``$``.
    """
    range_ms = round((end_s - start_s) * 1000)
    range_s = round(range_ms / 1000)
    rate = rate_interval(interval_s, scrape_interval_s)
    return {
        "__interval": format_interval(interval_s),
        "__interval_ms": str(round(interval_s * 1000)),
        "__rate_interval": format_interval(rate),
        "__rate_interval_ms": str(round(rate * 1000)),
        "__range": f"{range_s}s",
        "__range_s": str(range_s),
        "__range_ms": str(range_ms),
        "__from": str(round(start_s * 1000)),
        "__to": str(round(end_s * 1000)),
    }


def interpolate(
    text: str,
    values: Mapping[str, Sequence[str]],
    builtins: Mapping[str, str] | None = None,
    *,
    all_values: Mapping[str, Sequence[str]] | None = None,
    multi: Collection[str] = (),
    texts: Mapping[str, Sequence[str]] | None = None,
    custom_all: Mapping[str, str] | None = None,
    default_format: str | None = None,
) -> str:
    """``text`` with Grafana variable references replaced.

    Args:
        text: a query, title or link with ``$var``, ``${var}``, ``${var:format}``, ``[[var]]``.
        values: the selected values of each variable (``["$__all"]`` for All).
        builtins: the ``$__...`` variables (:func:`builtins_for`), by name without ``$``.
        all_values: each variable's option values, what All expands to
            (``.*`` when a variable has none given).
        multi: the variables that are multi-value or have "All": their values
            are regex-escaped for PromQL even when only one is selected.
        texts: the display texts of the selected values (the ``text`` format).
        custom_all: a variable's custom "All" value (``allValue``), inserted as is.
        default_format: the format where none is written (None: PromQL's, as
            Grafana's Prometheus data source; ``text`` for titles, ``regex``
            for a variable's regex).

    Returns:
        The text; references to unknown names are left as written.
    """
    builtins = builtins or {}
    all_values = all_values or {}
    texts = texts or {}
    custom_all = custom_all or {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        spec = match.group(3) or match.group(6) or default_format
        fmt, _, arg = (spec or "").partition(":")
        if name in builtins:
            builtin = builtins[name]
            return builtin if spec is None else _format(builtin, fmt, arg, name, [builtin])
        if name not in values:
            return match.group(0)
        selected = list(values[name])
        shown = list(texts.get(name, selected))
        is_all = bool(selected) and selected[0] == ALL_VALUE
        if is_all:
            shown = ["All"]
            if fmt == "text":
                return "All"
            if name in custom_all and fmt not in ("text", "percentencode"):
                # TemplateSrv: a custom all value is used as written, its own
                # variables replaced, unless the format needs the text.
                return interpolate(custom_all[name], values, builtins, all_values=all_values)
            if fmt == "queryparam":
                return f"var-{name}={ALL_VALUE}"
            if name not in all_values:
                return _ALL_FALLBACK
            selected = list(all_values[name])
        # Grafana passes a list (formatted as a list) for All and multi-value variables.
        value: str | list[str] = selected
        if not is_all and name not in multi and len(selected) <= 1:
            value = selected[0] if selected else ""
        if spec is None:
            return _promql(value)
        return _format(value, fmt, arg, name, shown)

    return _REFERENCE.sub(replace, text)


def _promql(value: str | list[str]) -> str:
    if isinstance(value, str):
        return _prom_escape(value)
    escaped = [_prom_regex_escape(v) for v in value]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def _format(value: str | list[str], fmt: str, arg: str, name: str, shown: list[str]) -> str:
    items = [value] if isinstance(value, str) else value
    if fmt == "regex":
        escaped = [escape_regex(v) for v in items]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "pipe":
        return "|".join(items)
    if fmt in ("csv", "raw"):
        return ",".join(items)  # raw: JavaScript's String(array)
    if fmt == "join":
        return (arg or ",").join(items)
    if fmt == "distributed":
        return ",".join([items[0], *(f"{name}={v}" for v in items[1:])]) if items else ""
    if fmt == "json":
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if fmt == "text":
        return " + ".join(shown)
    if fmt == "html":
        return html.escape(", ".join(items))
    if fmt == "queryparam":
        return "&".join(f"var-{name}={_uri(v)}" for v in items)
    if fmt == "percentencode":
        return _uri(value if isinstance(value, str) else "{" + ",".join(value) + "}")
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in items)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in items)
    if fmt == "sqlstring":
        return ",".join("'" + v.replace("'", "''").replace('"', '\\"') + "'" for v in items)
    if fmt == "date":
        return _date(items[0] if items else "", arg or "iso")
    # glob, and Grafana's fallback for a format it does not know.
    return "{" + ",".join(items) + "}" if len(items) > 1 else ",".join(items)


def _date(value: str, how: str) -> str:
    # ${__from:date:...} on Unix-ms values; other moment.js patterns are not supported.
    try:
        ms = int(value)
    except ValueError:
        return "NaN"
    if how == "ms":
        return value
    if how == "seconds":
        return str(round(ms / 1000))
    try:
        moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return "NaN"
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
