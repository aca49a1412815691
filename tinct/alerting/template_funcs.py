"""Prometheus's template functions, for :mod:`tinct.alerting.templates`.

Alert annotations written for Prometheus must render the same in tinct, so
the functions are Prometheus's (``template/template.go``, documented at
https://prometheus.io/docs/prometheus/latest/configuration/template_reference/)
plus Go's ``text/template`` builtins, over the Go value model and ``fmt`` of
:mod:`tinct.alerting.govalues` (``{{ $value }}`` of 1234567 prints
``1.234567e+06``, ``printf`` follows Go's verbs).
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tinct.alerting.govalues import (
    HTML,
    ArgTypeError,
    CallError,
    GoMap,
    GoTime,
    Sample,
    fmt_float,
    go_quote,
    go_sprint,
    go_sprintf,
    go_type,
    go_value_text,
    str_time,
    truth,
)
from tinct.durations import parse_duration
from tinct.goregex import compile_go_regex, expand

__all__ = ["BOUND_FUNCTIONS", "FUNCTIONS", "Func"]


def _to_float(value: Any) -> float:
    """Prometheus's ``convertToFloat``."""
    if isinstance(value, bool):
        raise CallError(f"can't convert {go_type(value)} to float")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return _parse_float(value)
    raise CallError(f"can't convert {go_type(value)} to float")


def _parse_float(text: str) -> float:
    """``strconv.ParseFloat`` (Inf/NaN spellings, underscores refused)."""
    low = text.lower()
    if low in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if low in ("-inf", "-infinity"):
        return -math.inf
    if low == "nan":
        return math.nan
    try:
        if "_" in text or not text or text.strip() != text:
            raise ValueError
        return float(text)
    except ValueError:
        raise CallError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax") from None


def _g4(v: float) -> str:
    return fmt_float(v, "g", "", 4)


def _humanize(value: Any) -> str:
    v = _to_float(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _g4(v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v) + prefix


def _humanize1024(value: Any) -> str:
    v = _to_float(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _g4(v) + prefix


def _humanize_duration(value: Any) -> str:
    v = _to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        total = int(v)
        seconds, minutes = total % 60, (total // 60) % 60
        hours, days = (total // 3600) % 24, total // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_g4(v)}{prefix}s"


def _humanize_percentage(value: Any) -> str:
    return _g4(_to_float(value) * 100) + "%"


def _float_to_time(v: float) -> datetime:
    ns = v * 1e9
    if ns > 2**63 - 1 or ns < -(2**63):
        raise CallError(
            f"{fmt_float(v, 'g', '', 17).replace('e+', 'e+')} cannot be represented as a "
            "nanoseconds timestamp since it overflows int64"
        )
    ms = int(ns) // 1_000_000
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def _humanize_timestamp(value: Any) -> str:
    if isinstance(value, GoTime):
        return str_time(value.at)
    v = _to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    return str_time(_float_to_time(v))


def _to_time(value: Any) -> GoTime:
    return GoTime(_float_to_time(_to_float(value)))


def _want(value: Any, kind: type, go: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ArgTypeError(f"wrong type for value; expected {go}; got {go_type(value)}")
    return value


def _sample(value: Any) -> Sample:
    return _want(value, Sample, "*template.sample")  # type: ignore[no-any-return]


def _samples(value: Any) -> list[Sample]:
    return _want(value, list, "template.queryResult")  # type: ignore[no-any-return]


def _s(value: Any) -> str:
    return _want(value, str, "string")  # type: ignore[no-any-return]


def _first(v: Any) -> Sample:
    items = _samples(v)
    if not items:
        raise CallError("first() called on vector with no elements")
    return items[0]


def _sort_by_label(label: Any, v: Any) -> list[Sample]:
    items = _samples(v)
    name = _s(label)
    items.sort(key=lambda s: s.Labels.get(name, ""))
    return items


def _re_replace_all(pattern: Any, repl: Any, text: Any) -> str:
    try:
        rx = compile_go_regex(_s(pattern))
    except (ValueError, re.error) as exc:
        raise CallError(f"regexp: Compile({go_quote(pattern)}): {exc}") from None
    src = _s(text)
    out: list[str] = []
    pos = 0
    prev_end = -1
    for m in rx.finditer(src):
        # Go's ReplaceAll ignores an empty match right after the previous match.
        if m.start() == m.end() and m.start() == prev_end:
            continue
        out.append(src[pos : m.start()])
        out.append(expand(_s(repl), m))
        pos = m.end()
        prev_end = m.end()
    out.append(src[pos:])
    return "".join(out)


def _match(pattern: Any, text: Any) -> bool:
    try:
        rx = compile_go_regex(_s(pattern))
    except (ValueError, re.error) as exc:
        raise CallError(f"error parsing regexp: {exc}") from None
    return rx.search(_s(text)) is not None


def _title(text: Any) -> str:
    out: list[str] = []
    prev = " "
    for ch in _s(text):
        out.append(ch.upper() if _is_separator(prev) else ch)
        prev = ch
    return "".join(out)


def _is_separator(ch: str) -> bool:
    # strings.Title's isSeparator.
    if ch.isascii():
        return not (ch.isalnum() or ch == "_")
    if ch.isalpha() or ch.isdigit():
        return False
    return ch.isspace()


def _split_host_port(host_port: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``; None where it errors."""
    if host_port.startswith("["):
        end = host_port.find("]")
        if end < 0 or not host_port[end + 1 :].startswith(":"):
            return None
        port = host_port[end + 2 :]
        if ":" in port:
            return None
        return host_port[1:end], port
    i = host_port.rfind(":")
    if i < 0 or ":" in host_port[:i] or "[" in host_port or "]" in host_port:
        return None
    return host_port[:i], host_port[i + 1 :]


def _strip_port(host_port: Any) -> str:
    text = _s(host_port)
    split = _split_host_port(text)
    return text if split is None else split[0]


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _strip_domain(host_port: Any) -> str:
    text = _s(host_port)
    split = _split_host_port(text)
    host, port = split if split is not None else (text, "")
    if _is_ip(host):
        return text
    host = host.split(".")[0]
    if port:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host


def _parse_duration(text: Any) -> float:
    try:
        return parse_duration(_s(text))
    except ValueError as exc:
        raise CallError(str(exc)) from None


def _args(*args: Any) -> GoMap:
    return GoMap({f"arg{i}": a for i, a in enumerate(args)}, None, "map[string]interface {}")


def _link(tab: int) -> Callable[[Any], str]:
    def link(expr: Any) -> str:
        return f"/graph?g0.expr={urllib.parse.quote_plus(_s(expr), safe='')}&g0.tab={tab}"

    return link


@dataclass(frozen=True)
class Func:
    """A template function: ``fn`` takes the evaluated args; ``arity`` None is variadic."""

    fn: Callable[..., Any]
    arity: int | None


def _html_escape(*args: Any) -> str:
    import html

    return html.escape(go_sprint(args), quote=True).replace("&#x27;", "&#39;")


def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(go_sprint(args), safe="")


def _len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list | dict):
        return len(value)
    raise CallError(f"len of type {go_type(value)}")


def _index(item: Any, *indexes: Any) -> Any:
    for idx in indexes:
        if isinstance(item, dict):
            zero = item.zero if isinstance(item, GoMap) else None
            item = item.get(_s(idx), zero)
        elif isinstance(item, list | str):
            if not isinstance(idx, int) or isinstance(idx, bool):
                raise CallError(f"cannot index slice/array with type {go_type(idx)}")
            if not 0 <= idx < len(item):
                raise CallError(f"index out of range: {idx}")
            item = item[idx] if isinstance(item, list) else item.encode()[idx]
        elif item is None:
            raise CallError("index of untyped nil")
        else:
            raise CallError(f"can't index item of type {go_type(item)}")
    return item


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "invalid"
    return "other"


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise CallError("missing argument for comparison")
    ka = _kind(a)
    for b in others:
        kb = _kind(b)
        if ka != kb:
            if a is not None and b is not None:
                raise CallError("incompatible types for comparison")
            continue
        if ka == "other":
            if isinstance(a, dict | list) or isinstance(b, dict | list):
                raise CallError(f"non-comparable type {go_value_text(a, False)}: {go_type(a)}")
        if a == b:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka in ("invalid", "other") or kb in ("invalid", "other"):
        raise CallError("invalid type for comparison")
    if ka != kb:
        raise CallError("incompatible types for comparison")
    if ka == "bool":
        raise CallError("invalid type for comparison")
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _printf(fmt: Any, *args: Any) -> str:
    return go_sprintf(_s(fmt), args)


def _println(*args: Any) -> str:
    return " ".join(go_value_text(a, False) for a in args) + "\n"


def _slice(item: Any, *idx: Any) -> Any:
    if not isinstance(item, list | str):
        raise CallError(f"can't slice item of type {go_type(item)}")
    bounds = [int(i) for i in idx]
    if len(bounds) > 2:
        raise CallError("too many slice indexes")
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise CallError(f"index out of range: {hi}")
    return item[lo:hi]


FUNCTIONS: dict[str, Func] = {
    # text/template builtins ("and", "or" are evaluated lazily by the executor).
    "eq": Func(_eq, None),
    "ne": Func(_ne, 2),
    "lt": Func(_lt, 2),
    "le": Func(_le, 2),
    "gt": Func(_gt, 2),
    "ge": Func(_ge, 2),
    "not": Func(lambda v: not truth(v), 1),
    "len": Func(_len, 1),
    "index": Func(_index, None),
    "slice": Func(_slice, None),
    "print": Func(lambda *a: go_sprint(a), None),
    "printf": Func(_printf, None),
    "println": Func(_println, None),
    "html": Func(_html_escape, None),
    "urlquery": Func(_urlquery, None),
    # Prometheus's (template/template.go).
    "first": Func(_first, 1),
    "label": Func(lambda name, s: _sample(s).Labels.get(_s(name), ""), 2),
    "value": Func(lambda s: _sample(s).Value, 1),
    "strvalue": Func(lambda s: _sample(s).Labels.get("__value__", ""), 1),
    "args": Func(_args, None),
    "reReplaceAll": Func(_re_replace_all, 3),
    "safeHtml": Func(lambda s: HTML(_s(s)), 1),
    "match": Func(_match, 2),
    "title": Func(_title, 1),
    "toUpper": Func(lambda s: _s(s).upper(), 1),
    "toLower": Func(lambda s: _s(s).lower(), 1),
    "graphLink": Func(_link(0), 1),
    "tableLink": Func(_link(1), 1),
    "sortByLabel": Func(_sort_by_label, 2),
    "stripPort": Func(_strip_port, 1),
    "stripDomain": Func(_strip_domain, 1),
    "humanize": Func(_humanize, 1),
    "humanize1024": Func(_humanize1024, 1),
    "humanizeDuration": Func(_humanize_duration, 1),
    "humanizePercentage": Func(_humanize_percentage, 1),
    "humanizeTimestamp": Func(_humanize_timestamp, 1),
    "toTime": Func(_to_time, 1),
    "parseDuration": Func(_parse_duration, 1),
}
# Functions bound per render: query, externalURL, pathPrefix (see templates.render).
BOUND_FUNCTIONS = ("query", "externalURL", "pathPrefix")
