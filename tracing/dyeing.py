"""Dyeing requests: from code (``with dye("user:42")``) and by rules at entry spans.

A dye in the context (W3C baggage ``tinct.dye``, see tracing.dye) makes the
sampler record every span of the request at every hop. This module puts dyes
there:

* ``dye()`` — from application code, for the block it guards;
* a ``DyeMatcher`` — asked by ``DyeSampler`` at each entry span (SERVER or
  CONSUMER without a local sampled parent) whether a rule dyes the request.
  ``StaticDyeMatcher`` holds rules in memory; the dye-rules client replaces
  them at runtime through ``replace_rules``.
* ``carry_dye()`` — puts the dye a rule gave an entry span into the context
  for the request's block, so the propagator sends it on to the next hop.

Rules see the attributes a span is *started* with (OpenTelemetry samplers run
before the span exists), so instrumentation that sets ``http.route`` only
after routing cannot be matched by route at that span.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry import baggage
from opentelemetry import context as context_api
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import Attributes

from tinct.tracing.dye import DYE_ATTRIBUTE, DYE_KEY, Dye, get_dye, parse_dye, set_dye

__all__ = [
    "RULE_KINDS",
    "DyeMatcher",
    "DyeRule",
    "StaticDyeMatcher",
    "carry_dye",
    "context_dye",
    "dye",
]

# Which span attribute each rule kind reads (OpenTelemetry semantic conventions:
# enduser.id / user.id, http.route + http.request.method, http.request.header.<key>).
# tenant.id has no semantic convention; it is tinct's, set by the application.
RULE_KINDS = ("user", "tenant", "route", "header")

# The W3C random flag guarantees the 56 least-significant bits of a trace id
# are random (W3C Trace Context Level 2, "random-trace-id" flag).
_RANDOM_BITS = 56
_RANDOM_MASK = (1 << _RANDOM_BITS) - 1
_HTTP_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)


# The context key the OpenTelemetry API keeps baggage under (private; see context_dye).
_BAGGAGE_KEY: object = getattr(baggage, "_BAGGAGE_KEY", None)


def context_dye(context: Context | None = None) -> Dye | None:
    """``tracing.dye.get_dye`` for hot paths (every span start).

    ``get_dye`` goes through ``baggage.get_all``, which builds a read-only
    mapping per call; this reads the baggage dict directly — half the cost.
    Falls back to ``get_dye`` if the API stops keeping baggage under
    ``_BAGGAGE_KEY``.
    """
    if not isinstance(_BAGGAGE_KEY, str):
        return get_dye(context)
    ctx = context if context is not None else context_api.get_current()
    members = ctx.get(_BAGGAGE_KEY)
    text = members.get(DYE_KEY) if isinstance(members, dict) else None
    return parse_dye(text) if isinstance(text, str) else None


@contextmanager
def dye(mark: str | Dye) -> Iterator[Dye]:
    """Dye every span started inside the block, here and at every later hop.

    ``with dye("user:42"):`` attaches a context whose baggage carries the dye;
    the propagator sends it on with outgoing requests. Thread- and task-local
    like every OpenTelemetry context.

    Raises:
        ValueError: ``mark`` is not ``kind:value`` (kind: a lowercase letter,
            then up to 31 of ``a-z 0-9 _ . -``; value: not empty).
    """
    parsed = mark if isinstance(mark, Dye) else parse_dye(mark)
    if parsed is None:
        raise ValueError(
            f"dye {mark!r} is not of the form kind:value "
            "(kind: a lowercase letter then up to 31 of a-z 0-9 _ . -; value: not empty)"
        )
    token = context_api.attach(set_dye(parsed))
    try:
        yield parsed
    finally:
        context_api.detach(token)


@contextmanager
def carry_dye(span: Span) -> Iterator[Dye | None]:
    """Carry the dye a rule stamped on ``span`` in the context for the block.

    Instrumentation calls this right after starting an entry span, so that a
    request a rule dyed here is dyed at the next hops too (the propagator reads
    the context's baggage, not span attributes). A no-op when the context is
    already dyed or the span carries no dye.
    """
    attributes = getattr(span, "attributes", None)
    text = attributes.get(DYE_ATTRIBUTE) if isinstance(attributes, Mapping) else None
    found = parse_dye(text) if isinstance(text, str) else None
    if found is None or get_dye() is not None:
        yield found
        return
    token = context_api.attach(set_dye(found))
    try:
        yield found
    finally:
        context_api.detach(token)


class DyeMatcher(Protocol):
    """Decides at an entry span whether a rule dyes the request.

    Called on the thread starting the span, for every entry span: must be
    fast, must not block or do I/O, and should not raise (the sampler treats
    an exception as no match).
    """

    def match(
        self, trace_id: int, name: str, kind: SpanKind | None, attributes: Attributes
    ) -> Dye | None:
        """The dye for a span starting with these arguments, or None."""
        ...


@dataclass(frozen=True)
class DyeRule:
    """One dye rule: requests matching it are dyed (and so recorded end to end).

    Attributes:
        id: the rule's id (as stored by the dye-rules API).
        kind: ``user`` (matches ``enduser.id`` or ``user.id``), ``tenant``
            (``tenant.id``), ``route`` (``http.route``, and the method when
            ``value`` is ``"GET /orders/{id}"``) or ``header``
            (``http.request.header.<key>``).
        key: the header name for kind ``header`` (case-insensitive); empty
            for the other kinds.
        value: the attribute value to match.
        ratio: the share of matching requests dyed, 0..1; decided by the
            trace id's random bits, so one trace gets one answer.
        expires_at: unix seconds after which the rule no longer applies;
            None for never.

    The dye given is ``kind:value``, and ``header:<key>=<value>`` for headers.
    """

    id: str
    kind: str
    key: str
    value: str
    ratio: float = 1.0
    expires_at: float | None = None
    dye: Dye = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise ValueError(f"dye rule kind {self.kind!r} is not one of {', '.join(RULE_KINDS)}")
        if not self.value:
            raise ValueError("dye rule value must not be empty")
        if self.kind == "header" and not self.key:
            raise ValueError("dye rule of kind header needs key (the header name)")
        if not 0.0 <= self.ratio <= 1.0:
            raise ValueError(f"dye rule ratio {self.ratio!r} is not within 0..1")
        text = f"header:{self.key.lower()}={self.value}" if self.kind == "header" else None
        found = parse_dye(text or f"{self.kind}:{self.value}")
        if found is None:
            raise ValueError(f"dye rule value {self.value!r} makes no valid dye (too long?)")
        object.__setattr__(self, "dye", found)


@dataclass(frozen=True)
class _Index:
    """Rules by the attribute value they match, so ``match`` is a few dict look-ups."""

    users: dict[str, tuple[DyeRule, ...]]
    tenants: dict[str, tuple[DyeRule, ...]]
    routes: dict[str, tuple[tuple[str, DyeRule], ...]]  # path -> (method or "", rule)
    headers: dict[str, dict[str, tuple[DyeRule, ...]]]  # attribute key -> value -> rules


def _build_index(rules: Iterable[DyeRule]) -> _Index:
    users: dict[str, list[DyeRule]] = {}
    tenants: dict[str, list[DyeRule]] = {}
    routes: dict[str, list[tuple[str, DyeRule]]] = {}
    headers: dict[str, dict[str, list[DyeRule]]] = {}
    for rule in rules:
        if rule.kind == "user":
            users.setdefault(rule.value, []).append(rule)
        elif rule.kind == "tenant":
            tenants.setdefault(rule.value, []).append(rule)
        elif rule.kind == "route":
            method, _, path = rule.value.partition(" ")
            if path and method.upper() in _HTTP_METHODS:
                routes.setdefault(path.strip(), []).append((method.upper(), rule))
            else:
                routes.setdefault(rule.value, []).append(("", rule))
        else:
            key = "http.request.header." + rule.key.lower()
            headers.setdefault(key, {}).setdefault(rule.value, []).append(rule)
    return _Index(
        {k: tuple(v) for k, v in users.items()},
        {k: tuple(v) for k, v in tenants.items()},
        {k: tuple(v) for k, v in routes.items()},
        {k: {val: tuple(rs) for val, rs in v.items()} for k, v in headers.items()},
    )


class StaticDyeMatcher:
    """An in-memory ``DyeMatcher``; ``replace_rules`` swaps its rules at runtime.

    Thread-safe without a lock on the match path: the rules live in one
    immutable index, replaced by a single reference assignment.
    """

    def __init__(
        self, rules: Iterable[DyeRule] = (), *, clock: Callable[[], float] = time.time
    ) -> None:
        """Args:
        rules: the initial rules.
        clock: unix seconds now, compared with ``DyeRule.expires_at``.
        """
        self._clock = clock
        self._rules: tuple[DyeRule, ...] = tuple(rules)
        self._index = _build_index(self._rules)

    @property
    def rules(self) -> tuple[DyeRule, ...]:
        """The rules in force (expired ones included until replaced)."""
        return self._rules

    def replace_rules(self, rules: Iterable[DyeRule]) -> None:
        """Replace every rule at once; spans starting afterwards see only the new ones."""
        snapshot = tuple(rules)
        index = _build_index(snapshot)
        self._rules, self._index = snapshot, index

    def match(
        self, trace_id: int, name: str, kind: SpanKind | None, attributes: Attributes
    ) -> Dye | None:
        """The dye of the first live rule matching ``attributes``, or None."""
        if not attributes:
            return None
        index = self._index
        if index.users:
            user = attributes.get("enduser.id")
            if user is None:
                user = attributes.get("user.id")
            found = self._first(index.users.get(str(user)) if user is not None else None, trace_id)
            if found is not None:
                return found
        if index.tenants:
            tenant = attributes.get("tenant.id")
            if tenant is not None:
                found = self._first(index.tenants.get(str(tenant)), trace_id)
                if found is not None:
                    return found
        if index.routes:
            route = attributes.get("http.route")
            candidates = index.routes.get(route) if isinstance(route, str) else None
            if candidates:
                method = attributes.get("http.request.method") or attributes.get("http.method")
                for want, rule in candidates:
                    if (not want or want == method) and self._live(rule, trace_id):
                        return rule.dye
        for key, by_value in index.headers.items():
            # Semantic conventions make header attributes string arrays; a string is taken too.
            got = attributes.get(key)
            if isinstance(got, str):
                got = (got,)
            if not isinstance(got, tuple | list):
                continue
            for one in got:
                found = self._first(by_value.get(str(one)), trace_id)
                if found is not None:
                    return found
        return None

    def _first(self, rules: tuple[DyeRule, ...] | None, trace_id: int) -> Dye | None:
        for rule in rules or ():
            if self._live(rule, trace_id):
                return rule.dye
        return None

    def _live(self, rule: DyeRule, trace_id: int) -> bool:
        if rule.expires_at is not None and self._clock() >= rule.expires_at:
            return False
        if rule.ratio >= 1.0:
            return True
        # The same random bits the sampler compares with its threshold: the
        # answer is a function of the trace id, identical at every retry.
        return (trace_id & _RANDOM_MASK) < rule.ratio * (1 << _RANDOM_BITS)
