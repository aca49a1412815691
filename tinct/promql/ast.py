"""tinct's own PromQL syntax tree, built from promql-parser's.

promql-parser (a Rust extension) parses and type-checks; its node objects
are read-only and some of its accessors misbehave (a negative ``@``
timestamp panics), so the engine converts them once into these plain
dataclasses, which it may also rewrite (the peer-suite runner pins ``@``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import promql_parser

from tinct.goregex import compile_go_regex
from tinct.metrics import NAME_LABEL, Matcher
from tinct.promql.result import BadQueryError

__all__ = [
    "Expr",
    "NumberLit",
    "StringLit",
    "Selector",
    "Subquery",
    "Aggregate",
    "Binary",
    "Unary",
    "Call",
    "At",
    "parse",
]

# An ``@`` value far past any real timestamp stands for a negative one: the
# parser's ``at`` accessor panics on times before the epoch.
_NEG_AT_BASE = 10**11
_NEG_AT = re.compile(r"@\s*-\s*([0-9][0-9.eE+]*)")


@dataclass
class At:
    """An ``@`` modifier: ``kind`` is ``at`` (with ``ms``), ``start`` or ``end``."""

    kind: str
    ms: int = 0


@dataclass
class NumberLit:
    value: float


@dataclass
class StringLit:
    value: str


@dataclass
class Selector:
    """A vector selector, or a matrix selector when ``range_ms`` is set."""

    name: str
    matchers: list[Matcher]
    offset_ms: int = 0
    at: At | None = None
    range_ms: int | None = None
    or_matchers: list[list[Matcher]] = field(default_factory=list)


@dataclass
class Subquery:
    expr: Expr
    range_ms: int
    step_ms: int | None
    offset_ms: int = 0
    at: At | None = None


@dataclass
class Aggregate:
    op: str
    expr: Expr
    param: Expr | None
    grouping: list[str] | None  # None: no by/without
    without: bool = False


@dataclass
class Binary:
    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    card: str = "one-to-one"  # one-to-one, many-to-one, one-to-many, many-to-many
    on: bool | None = None  # None: no on()/ignoring()
    matching: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)


@dataclass
class Unary:
    expr: Expr


@dataclass
class Call:
    name: str
    args: list[Expr]
    node: Any = field(
        repr=False
    )  # the parser's Call, for functions that read their arguments' syntax


Expr = NumberLit | StringLit | Selector | Subquery | Aggregate | Binary | Unary | Call


def _ms(d: timedelta | None) -> int:
    if d is None:
        return 0
    return (d.days * 86_400_000_000 + d.seconds * 1_000_000 + d.microseconds) // 1000


def _at(node: Any) -> At | None:
    at = node.at
    if at is None:
        return None
    kind = str(at.type).rsplit(".", 1)[-1]
    if kind == "Start":
        return At("start")
    if kind == "End":
        return At("end")
    ms = int(round(at.at.timestamp() * 1000))
    if ms >= _NEG_AT_BASE * 500:
        ms -= _NEG_AT_BASE * 1000
    return At("at", ms)


_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def _matcher(m: Any) -> Matcher:
    op = _OPS[str(m.op).rsplit(".", 1)[-1]]
    value = m.value
    if op in ("=~", "!~"):
        # RE2 syntax Python spells differently (e.g. "((?i)a)") is translated
        # into a form both accept; anything else is passed on as written.
        try:
            re.compile(value)
        except re.error:
            try:
                value = compile_go_regex(value).pattern
            except (re.error, ValueError) as exc:
                raise BadQueryError(f"invalid regular expression {m.value!r}: {exc}") from None
    return Matcher(m.name, op, value)


def _selector(vs: Any, range_ms: int | None) -> Selector:
    matchers = [_matcher(m) for m in vs.matchers.matchers]
    name = vs.name or ""
    if name:
        matchers.insert(0, Matcher(NAME_LABEL, "=", name))
    ors = [[_matcher(m) for m in group] for group in vs.matchers.or_matchers]
    return Selector(name, matchers, _ms(vs.offset), _at(vs), range_ms, ors)


_CARD = {
    "OneToOne": "one-to-one",
    "ManyToOne": "many-to-one",
    "OneToMany": "one-to-many",
    "ManyToMany": "many-to-many",
}


def _convert(node: Any) -> Expr:
    kind = type(node).__name__
    if kind == "NumberLiteral":
        return NumberLit(float(node.val))
    if kind == "StringLiteral":
        return StringLit(str(node.val))
    if kind == "ParenExpr":
        return _convert(node.expr)
    if kind == "UnaryExpr":
        return Unary(_convert(node.expr))
    if kind == "VectorSelector":
        return _selector(node, None)
    if kind == "MatrixSelector":
        return _selector(node.vector_selector, _ms(node.range))
    if kind == "SubqueryExpr":
        step = _ms(node.step) if node.step is not None else None
        return Subquery(
            _convert(node.expr), _ms(node.range), step or None, _ms(node.offset), _at(node)
        )
    if kind == "AggregateExpr":
        mod = node.modifier
        grouping = None
        without = False
        if mod is not None:
            grouping = list(mod.labels)
            without = str(mod.type).endswith("Without")
        param = _convert(node.param) if node.param is not None else None
        return Aggregate(str(node.op).lower(), _convert(node.expr), param, grouping, without)
    if kind == "BinaryExpr":
        expr = Binary(str(node.op).lower(), _convert(node.lhs), _convert(node.rhs))
        mod = node.modifier
        if mod is not None:
            expr.return_bool = bool(mod.return_bool)
            expr.card = _CARD[str(mod.card).rsplit(".", 1)[-1]]
            if mod.matching is not None:
                expr.on = str(mod.matching.type).endswith("Include")
                expr.matching = list(mod.matching.labels)
            if mod.group_labels:
                expr.include = list(mod.group_labels)
        if expr.op in ("and", "or", "unless"):
            expr.card = "many-to-many"
        return expr
    if kind == "Call":
        return Call(node.func.name, [_convert(a) for a in node.args], node)
    raise BadQueryError(f"unsupported expression {kind}")


def parse(text: str) -> Expr:
    """Parse ``text`` into tinct's tree.

    Raises:
        BadQueryError: the text is not valid PromQL.
    """
    if "@" in text:
        text = _NEG_AT.sub(lambda m: f"@ {_NEG_AT_BASE - float(m.group(1)) + 0:.3f}", text)
    try:
        node = promql_parser.parse(text)
    except BaseException as exc:  # the extension raises ValueError, or panics
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise BadQueryError(f"parse error: {exc}") from None
    return _convert(node)
