"""From a variable query's answer to its options: Grafana's regex filter and sort orders.

Both follow Grafana's ``metricNamesToVariableValues`` and
``sortVariableValues`` (``public/app/features/variables/utils.ts``, and
``scenes/src/variables/variants/query/utils.ts`` since Grafana 10):

* the regex is written ``/pattern/flags`` or bare (then anchored: ``^...$``,
  ``stringToJsRegex``); an option that does not match is dropped; named
  groups ``value`` and ``text`` set the option's value and text, else a
  capture group sets both, else the option is kept as it is; with the ``g``
  flag every match of a capture group is an option;
* options are then made unique by value and sorted: 0 as found, 1/2 by value
  (JavaScript's code-unit order), 3/4 by the first number in the text, 5/6 by
  value ignoring case, 7/8 "natural" (numbers by value, letters ignoring case,
  like ``localeCompare`` with ``numeric: true``); even modes are descending.

Grafana's regexes are JavaScript's; the common syntax is read as Python's
``re`` (``(?<name>...)`` becomes ``(?P<name>...)``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from tinct.promql.api_params import format_value

__all__ = ["filter_options", "format_sample", "sort_options", "js_regex"]

_JS_REGEX = re.compile(r"^/(.*?)/([gimsuy]*)$", re.DOTALL)
_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}
_FIRST_NUMBER = re.compile(r".*?(\d+)")
_CHUNKS = re.compile(r"(\d+)")


def js_regex(text: str) -> tuple[re.Pattern[str], bool]:
    """Grafana's ``stringToJsRegex``: the compiled pattern and whether it has the ``g`` flag.

    Raises:
        ValueError: the regex is not valid.
    """
    match = _JS_REGEX.match(text) if text.startswith("/") else None
    if text.startswith("/") and match is None:
        raise ValueError(f"{text!r} is not a valid regular expression")
    source, flags = (match.group(1), match.group(2)) if match else (f"^{text}$", "")
    py_flags = 0
    for flag in flags:
        py_flags |= _FLAGS.get(flag, 0)
    try:
        return re.compile(_NAMED_GROUP.sub("(?P<", source), py_flags), "g" in flags
    except re.error as exc:
        raise ValueError(f"{text!r} is not a valid regular expression: {exc}") from None


def _all_matches(value: str, pattern: re.Pattern[str], is_global: bool) -> list[re.Match[str]]:
    # getAllMatches: one exec, or with the g flag every match until an empty one.
    if not is_global:
        found = pattern.search(value)
        return [] if found is None else [found]
    out = []
    for found in pattern.finditer(value):
        out.append(found)
        if found.group(0) == "":
            break
    return out


def filter_options(options: Sequence[tuple[str, str]], regex: str) -> list[tuple[str, str]]:
    """Grafana's variable regex applied to ``(text, value)`` options, made unique by value.

    Raises:
        ValueError: the regex is not valid.
    """
    out: list[tuple[str, str]] = []
    if regex:
        pattern, is_global = js_regex(regex)
        for text, value in options:
            matches = _all_matches(value, pattern, is_global)
            if not matches:
                continue
            named_value = next((v for m in matches if (v := m.groupdict().get("value"))), None)
            named_text = next((t for m in matches if (t := m.groupdict().get("text"))), None)
            first = next((m for m in matches if pattern.groups), None)
            if named_value or named_text:
                value = named_value or named_text or ""
                text = named_text or named_value or ""
            elif first is not None and len(matches) > 1:
                out.extend((m.group(1) or "", m.group(1) or "") for m in matches)
                continue
            elif first is not None:
                text = value = first.group(1) or ""
            out.append((text, value))
    else:
        out = list(options)
    seen: set[str] = set()
    unique = []
    for text, value in out:
        if value not in seen:
            seen.add(value)
            unique.append((text, value))
    return unique


def _first_number(text: str) -> int:
    found = _FIRST_NUMBER.match(text)
    return int(found.group(1)) if found else -1


def _natural(text: str) -> tuple[tuple[tuple[int, int, str], ...], str]:
    # Digit runs compare as numbers and before letters; letters ignore case,
    # lower case first on a tie (ICU's root collation, roughly).
    chunks = tuple(
        (0, int(chunk), "") if chunk.isdigit() else (1, 0, chunk.casefold())
        for chunk in _CHUNKS.split(text)
        if chunk
    )
    return chunks, text.swapcase()


def sort_options(options: Sequence[tuple[str, str]], sort: int) -> list[tuple[str, str]]:
    """``(text, value)`` options in Grafana's ``VariableSort`` order (0-8, see the module)."""
    items = list(options)
    if sort in (1, 2):
        items.sort(key=lambda o: o[1].encode("utf-16-be"))
    elif sort in (3, 4):
        items.sort(key=lambda o: _first_number(o[0]))
    elif sort in (5, 6):
        items.sort(key=lambda o: o[1].lower().encode("utf-16-be"))
    elif sort in (7, 8):
        items.sort(key=lambda o: _natural(o[0]))
    if sort in (2, 4, 6, 8):
        items.reverse()
    return items


def format_sample(labels: Mapping[str, str], value: float | None, time_s: float) -> str:
    """A sample as Grafana's ``query_result`` writes it: ``up{job="a"} 1 1700000000000``.

    With ``value`` None, only ``name{labels}`` (a bare selector's series,
    ``getOriginalMetricName``).
    """
    name = labels.get("__name__", "")
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    text = f"{name}{{{inner}}}"
    if value is None:
        return text
    stamp = round(time_s * 1000) if math.isfinite(time_s) else 0
    return f"{text} {format_value(value)} {stamp}"
