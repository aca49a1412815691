"""Parses a scraped body into metric families, as Prometheus reads it.

The format is chosen by the response's ``Content-Type`` the way Prometheus's
``textparse.New`` chooses (``model/textparse/interface.go``):
``application/openmetrics-text`` is OpenMetrics 1.0, anything else, a
missing or unparsable type included, is the Prometheus text format 0.0.4.
(Prometheus 3.x fails such a scrape unless ``fallback_scrape_protocol`` is
set; 2.x, and tinct, fall back to the text format.) The protobuf format is
refused: tinct never asks for it.

The families are ``prometheus_client.Metric`` objects, as prometheus_client's
parsers (``prometheus_client.parser``, ``prometheus_client.openmetrics.parser``)
return them, so a scraped target and a built-in collector look alike. Three
things are put right so that what is stored is what Prometheus stores:

- a text-format counter family and its samples are named as its ``# TYPE``
  line names them (prometheus_client drops ``_total`` from the family's
  name, and renames the samples of ``# TYPE foo counter`` to ``foo_total``).
  Such a family's ``name`` is therefore the name Prometheus reports its
  metadata under, ``_total`` included when written so; OpenMetrics counter
  families keep the name of their ``# TYPE`` line, without ``_total``.
- ``le`` of histogram buckets and ``quantile`` of summaries are normalized
  to the OpenMetrics float form (``le="1"`` becomes ``le="1.0"``), as
  Prometheus 3.x does on ingestion (``normalizeFloatsInLabelValues`` in
  ``model/textparse``); Prometheus 2.x stored them as written.
- sample values are floats (prometheus_client keeps integers as ``int``).

The text format, most of what is scraped, goes through a parser of its own
about four times faster than prometheus_client's (which took most of a
scrape's time): it reads the format as exporters write it (single spaces,
no blanks inside braces) and hands anything else, errors included, to
:func:`parse_with_prometheus_client`, whose results it reproduces exactly.
"""

from __future__ import annotations

import io
import math
import re
from decimal import Decimal
from typing import TextIO, cast

from prometheus_client import Metric
from prometheus_client.openmetrics.parser import (
    text_fd_to_metric_families as _openmetrics_families,
)
from prometheus_client.parser import text_fd_to_metric_families as _text_families
from prometheus_client.samples import Sample

from tinct.collectors.base import CollectError

__all__ = [
    "OPENMETRICS_CONTENT_TYPE",
    "TEXT_CONTENT_TYPE",
    "exposition_format",
    "format_openmetrics_float",
    "parse_exposition",
    "parse_with_prometheus_client",
]

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# A text-format "# TYPE <name> counter" line (stripped), as prometheus_client
# splits it: on any whitespace.
_COUNTER_TYPE = re.compile(
    r"#[ \t\n\r\x0b\x0c]+TYPE[ \t\n\r\x0b\x0c]+(\S+)[ \t\n\r\x0b\x0c]+counter"
)
_PARSE_ERRORS = (ValueError, IndexError, KeyError, TypeError, OverflowError)
# Of a failing line, this much is quoted in the error.
_QUOTE_CHARS = 120


def exposition_format(content_type: str) -> str:
    """``"openmetrics"`` or ``"text"``: how a body of ``content_type`` is parsed.

    Raises:
        CollectError: the protobuf format, which tinct does not parse.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/openmetrics-text":
        return "openmetrics"
    if media_type == "application/vnd.google.protobuf":
        raise CollectError(f"unsupported exposition format {content_type!r} (protobuf)")
    return "text"


def parse_exposition(body: bytes, content_type: str) -> list[Metric]:
    """The metric families of a scraped ``body`` served as ``content_type``.

    Sample names, labels and values are what Prometheus stores for the same
    body (see the module docstring). Text-format timestamps come back as
    float seconds, OpenMetrics ones as ``prometheus_client.samples.Timestamp``,
    as prometheus_client gives them. Pure function; CPU-bound.

    Raises:
        CollectError: the body is not valid UTF-8 or not valid in its format;
            the message names the line (number and text) where the parser
            stopped.
    """
    if exposition_format(content_type) == "text":
        families = _parse_text_fast(_decode(body, "text"))
        if families is not None:
            return families
    return parse_with_prometheus_client(body, content_type)


def parse_with_prometheus_client(body: bytes, content_type: str) -> list[Metric]:
    """:func:`parse_exposition` done by prometheus_client's parsers alone.

    The reference the text format's own parser is held to, and what it falls
    back on. Same contract as :func:`parse_exposition`.
    """
    fmt = exposition_format(content_type)
    text = _decode(body, fmt)
    lines = _Lines(text)
    parse = _openmetrics_families if fmt == "openmetrics" else _text_families
    families = []
    try:
        # The parsers only iterate over their file argument.
        for family in parse(cast(TextIO, lines)):
            if fmt == "text" and family.type == "counter":
                _restore_counter_name(family, lines)
            families.append(family)
    except _PARSE_ERRORS as exc:
        raise CollectError(_parse_error(fmt, text, lines.read, exc)) from exc
    for family in families:
        _normalize(family)
    return families


class _Lines:
    """The body's lines as a parser reads them, counted, with the counter
    ``# TYPE`` lines among them noted as ``(line number, name)``."""

    def __init__(self, text: str) -> None:
        self._lines = io.StringIO(text)
        self.read = 0
        self.done = False
        self.counters: list[tuple[int, str]] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.done = True
            raise
        self.read += 1
        if "counter" in line and "TYPE" in line:
            match = _COUNTER_TYPE.fullmatch(line.strip())
            if match is not None:
                self.counters.append((self.read, _unquote(match.group(1))))
        return line


def _decode(body: bytes, fmt: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise CollectError(f"{fmt} exposition, line {line}: not valid UTF-8") from exc


def _parse_error(fmt: str, text: str, number: int, exc: BaseException) -> str:
    """The message of a parse error: format, line number, reason, line."""
    # The parsers read a line and raise before reading the next.
    lines = text.split("\n")
    line = lines[number - 1] if 0 < number <= len(lines) else ""
    if len(line) > _QUOTE_CHARS:
        line = line[:_QUOTE_CHARS] + "..."
    reason = str(exc) or type(exc).__name__
    if line and line not in reason:
        reason = f"{reason}: {line!r}"
    return f"{fmt} exposition, line {number}: {reason}"


# -- the text format's own parser ------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
# Label names starting "__" are left to prometheus_client (it refuses them
# under its legacy validation).
_LABEL = r'(?!__)[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*(?:\\.[^"\\]*)*"'
_VALUE = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN"
_FAST_SAMPLE = re.compile(
    rf"({_NAME})(?:\{{((?:{_LABEL}(?:,{_LABEL})*,?)?)\}})? ({_VALUE})(?: (-?[0-9]+))?"
)
_FAST_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*(?:\\.[^"\\]*)*)"')
_FAST_HELP = re.compile(rf"#[ \t]+HELP[ \t]+({_NAME})(?:[ \t]+(\S.*))?")
_FAST_TYPE = re.compile(
    rf"#[ \t]+TYPE[ \t]+({_NAME})[ \t]+(counter|gauge|histogram|summary|untyped)"
)
_ESCAPE = re.compile(r'\\[\\n"]')
_HELP_ESCAPE = re.compile(r"\\[\\n]")
_UNESCAPED = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}
# The sample names a family of each type takes (prometheus_client's parser).
_SUFFIXES = {"summary": ("_count", "_sum", ""), "histogram": ("_count", "_sum", "_bucket")}
_INF = math.inf


def _unescape(match: re.Match[str]) -> str:
    return _UNESCAPED[match.group(0)]


def _parse_text_fast(text: str) -> list[Metric] | None:
    """prometheus_client's text parsing, faster; None when the text has
    anything it leaves to prometheus_client.

    It walks the lines with the same state as
    ``prometheus_client.parser.text_fd_to_metric_families`` (a ``# HELP`` or
    ``# TYPE`` of a new name starts a family; a sample the current family
    does not take becomes an untyped family of its own).
    """
    families: list[Metric] = []
    name = doc = ""
    typ = "untyped"
    samples: list[Sample] = []
    allowed: tuple[str, ...] = ()
    new_sample = tuple.__new__
    sample_match = _FAST_SAMPLE.fullmatch
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line[0] == "#":
            help_line = _FAST_HELP.fullmatch(line)
            if help_line is not None:
                candidate = help_line.group(1)
                if candidate != name:
                    if name:
                        families.append(_family(name, doc, typ, samples))
                    name, typ, samples, allowed = candidate, "untyped", [], (candidate,)
                doc = _HELP_ESCAPE.sub(_unescape, help_line.group(2) or "")
                continue
            type_line = _FAST_TYPE.fullmatch(line)
            if type_line is not None:
                candidate, declared = type_line.groups()
                if candidate != name:
                    if name:
                        families.append(_family(name, doc, typ, samples))
                    name, doc, samples = candidate, "", []
                typ = declared
                allowed = tuple(name + s for s in _SUFFIXES.get(typ, ("",)))
                continue
            if "HELP" in line or "TYPE" in line or '"' in line:
                return None
            continue  # a comment
        match = sample_match(line)
        if match is None:
            return None
        sample_name, label_text, value_text, timestamp = match.groups()
        labels: dict[str, str] = {}
        if label_text:
            if "\\" in label_text:
                pairs = _FAST_PAIR.findall(label_text)
                labels = {k: _ESCAPE.sub(_unescape, v) if "\\" in v else v for k, v in pairs}
                count = len(pairs)
            else:
                # Matched above and free of escapes, every '"' delimits a value:
                # name=", value, ",name=", value, ... (a trailing ',' dropped).
                parts = iter(label_text.split('"'))
                labels = {k.strip(",="): v for k, v in zip(parts, parts, strict=False)}
                count = label_text.count('"') // 2
            if len(labels) != count:
                return None  # a repeated label name: prometheus_client's error
        value = float(value_text)
        if (value == _INF or value == -_INF) and "Inf" not in value_text:
            return None  # out of range: prometheus_client decides
        if timestamp and len(timestamp) > 20:
            return None  # beyond int64: prometheus_client decides
        sample = new_sample(
            Sample,
            (sample_name, labels, value, int(timestamp) / 1000 if timestamp else None, None, None),
        )
        if sample_name in allowed:
            samples.append(sample)
            continue
        if name:
            families.append(_family(name, doc, typ, samples))
        name = doc = ""
        typ, samples, allowed = "untyped", [], ()
        families.append(_family(sample_name, "", "untyped", [sample]))
    if name:
        families.append(_family(name, doc, typ, samples))
    return families


def _family(name: str, doc: str, typ: str, samples: list[Sample]) -> Metric:
    """A family as prometheus_client's parser builds it, put right as
    :func:`parse_with_prometheus_client` puts it right (counters keep their
    written names: nothing to undo)."""
    family = Metric(name, doc, typ)
    family.samples = samples
    label = _FLOAT_LABEL.get(typ)
    if label is not None:
        for i, sample in enumerate(samples):
            written = sample.labels.get(label)
            if written is not None:
                normal = _normalize_float_label(written)
                if normal != written:
                    samples[i] = sample._replace(labels={**sample.labels, label: normal})
    return family


# -- prometheus_client's results put right ------------------------------------------

# Labels holding a float that Prometheus 3.x normalizes, by family type.
_FLOAT_LABEL = {"histogram": "le", "summary": "quantile"}


def _restore_counter_name(family: Metric, lines: _Lines) -> None:
    """Give a text-format counter family back the name written in the exposition.

    prometheus_client names a counter family without ``_total`` and its
    samples ``<name>_total``, both for ``# TYPE foo_total counter`` (samples
    written ``foo_total``) and for ``# TYPE foo counter`` (samples written
    ``foo``, renamed by it). Only samples named as the ``# TYPE`` line get
    into a counter family, so the family and its samples get that name back:
    Prometheus stores samples under the names written, and reports metadata
    under the ``# TYPE`` name (which a family without samples would lose).

    The family is yielded when the parser has read the line starting the
    next one (or the whole body), so its ``# TYPE`` line is the last counter
    ``# TYPE`` of either name before that line.
    """
    total = family.name + "_total"
    names = {total} if family.name.endswith("_total") else {family.name, total}
    last = lines.read if lines.done else lines.read - 1
    written = total
    for number, name in reversed(lines.counters):
        if number <= last and name in names:
            written = name
            break
    family.name = written
    if written != total:
        family.samples = [
            s._replace(name=written) if s.name == total else s for s in family.samples
        ]


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1]
    return name


def _normalize(family: Metric) -> None:
    """Float values; ``le``/``quantile`` in OpenMetrics form (Prometheus 3.x)."""
    label = _FLOAT_LABEL.get(family.type)
    samples: list[Sample] = []
    changed = False
    for sample in family.samples:
        value = sample.value
        labels = sample.labels
        if type(value) is not float:
            try:
                value = float(value)
            except OverflowError as exc:  # an integer beyond float64, which Go refuses
                raise CollectError(f"sample {sample.name}: value out of range") from exc
            changed = True
        if label is not None and label in labels:
            normal = _normalize_float_label(labels[label])
            if normal != labels[label]:
                labels = {**labels, label: normal}
                changed = True
        if value is not sample.value or labels is not sample.labels:
            sample = sample._replace(value=value, labels=labels)
        samples.append(sample)
    if changed:
        family.samples = samples


def _normalize_float_label(value: str) -> str:
    number = _go_parse_float(value)
    return value if number is None else format_openmetrics_float(number)


# What Go's strconv.ParseFloat(s, 64) reads: decimal, Inf/Infinity with an
# optional sign, NaN without one (any case), and hex floats.
_GO_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_GO_SPECIAL = re.compile(r"(?i:[+-]?inf(?:inity)?|nan)\Z")
_GO_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+\Z")


def _go_parse_float(text: str) -> float | None:
    """Go's ``strconv.ParseFloat(text, 64)``; None where Go refuses the text."""
    if _GO_DECIMAL.match(text) or _GO_SPECIAL.match(text):
        number = float(text)
    elif _GO_HEX.match(text):
        number = float.fromhex(text)
    else:
        return None
    if math.isinf(number) and not _GO_SPECIAL.match(text):
        return None  # out of float64's range: Go's ErrRange
    return number


def format_openmetrics_float(number: float) -> str:
    """A float as OpenMetrics writes it: Go's shortest ``%g`` with ``.0`` added
    when it has neither a point nor an exponent (``1`` → ``1.0``, ``1e+06``).

    Prometheus's ``formatOpenMetricsFloat`` (``model/textparse``).
    """
    if number == 0:
        return "0.0"  # -0 too: Go's switch compares with == 0
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    text = _go_format_g(number)
    if "e" in text or "." in text:
        return text
    return text + ".0"


def _go_format_g(number: float) -> str:
    """Go's ``strconv.FormatFloat(number, 'g', -1, 64)`` for a finite float."""
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    # repr gives the shortest digits that read back as the same float, as
    # Go's shortest formatting does.
    parts = Decimal(repr(abs(number))).as_tuple()
    written = "".join(map(str, parts.digits))
    digits = written.rstrip("0")
    point = len(written) + int(parts.exponent)  # the point sits after this many digits
    exp = point - 1
    sign = "-" if number < 0 else ""
    # strconv/ftoa.go: %e when the exponent is < -4 or >= the precision,
    # which is 6 for the shortest formatting.
    if exp < -4 or exp >= 6:
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{head}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"
