"""The dye sampler: dyed requests are recorded at every hop, the rest are sampled lightly.

Decision order for each span (``DyeSampler.should_sample``):

1. The context carries a dye (baggage ``tinct.dye``) → record and sample,
   whatever the parent's sampled flag: a dye added at this hop starts the
   recording here, and the span keeps the parent's trace id and parent span
   id, so the partial trace hangs together.
2. An entry span (SERVER or CONSUMER without a local sampled parent) that a
   ``DyeMatcher`` rule dyes → record and sample. The spans started below it
   in this process get the dye too (remembered by trace id), and
   ``tracing.dyeing.carry_dye`` puts it in the context so later hops see it.
3. A valid parent → follow its sampled flag (OpenTelemetry ``ParentBased``,
   local and remote parents alike).
4. A root → sampled with a probability, decided consistently from the trace
   id as in OpenTelemetry's consistent probability sampling
   (https://opentelemetry.io/docs/specs/otel/trace/tracestate-probability-sampling/):
   the randomness R is the explicit ``rv`` of the ``ot`` tracestate entry or
   else the 56 least-significant bits of the trace id (random per W3C Trace
   Context Level 2), and the span is kept when R >= threshold T, where
   T = (1 - p) * 2^56. An incoming ``ot=th:<hex>`` threshold is honoured
   instead of tinct's own probability. The probability is either fixed
   (default 1/1024, as in Dapper) or adaptive, aiming at N sampled roots per
   second per span name. Sampled roots carry ``tinct.sampling.probability``;
   fixed-probability roots also write ``ot=th:`` so OpenTelemetry-consistent
   samplers downstream know it.

Hot path: the unsampled answers are prebuilt ``SamplingResult`` objects (the
SDK copies the result's ``trace_state`` into the new span, so a dropped child
returns its parent's tracestate, cached per tracestate object); the adaptive
counters take one short lock; nothing raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry import baggage
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import SpanContext, TraceState
from opentelemetry.util.types import Attributes

from tinct.tracing.dye import DYE_ATTRIBUTE, SAMPLING_PROBABILITY_ATTRIBUTE, Dye
from tinct.tracing.dyeing import DyeMatcher, context_dye

__all__ = ["DEFAULT_PROBABILITY", "DyeSampler", "probability_threshold"]

logger = logging.getLogger(__name__)

DEFAULT_PROBABILITY = 1 / 1024  # Dapper's default rate

_RANDOM_BITS = 56  # tracestate-probability-sampling: R and T are 56-bit
_MAX_THRESHOLD = 1 << _RANDOM_BITS
_RANDOM_MASK = _MAX_THRESHOLD - 1
_TH_DIGITS = _RANDOM_BITS // 4  # th is up to 14 hex digits, trailing zeros dropped
_HEX = frozenset("0123456789abcdef")  # th and rv are lowercase hex
_ENTRY_KINDS = (SpanKind.SERVER, SpanKind.CONSUMER)

# Adaptive mode: rates are estimated over one-second windows; past this many
# distinct span names the rest share one budget (span names should be low
# cardinality, but a bad instrumentation must not grow memory without bound).
_WINDOW_SECONDS = 1.0
_BURST_FLOOR_SECONDS = 0.01
_MAX_OPERATIONS = 1000
_OTHER_OPERATIONS = "\x00other"
_MAX_RULE_DYED_TRACES = 4096  # rule-dyed traces whose in-process children still get the dye

# The context key the OpenTelemetry API keeps baggage under (private, so only
# used to skip the dye look-up when a context has no baggage at all).
_BAGGAGE_KEY: str | None = getattr(baggage, "_BAGGAGE_KEY", None)

_DROP = SamplingResult(Decision.DROP)
_SAMPLE = SamplingResult(Decision.RECORD_AND_SAMPLE)


def _sampled(
    attributes: Attributes, key: str, value: str | float, trace_state: TraceState | None
) -> SamplingResult:
    """RECORD_AND_SAMPLE with the span's start attributes plus ``key``.

    The SDK gives a new span the *result's* attributes, not the ones it was
    started with, so a sampler that adds one must carry the others over.
    """
    merged = {**attributes, key: value} if attributes else {key: value}
    return SamplingResult(Decision.RECORD_AND_SAMPLE, merged, trace_state)


def _drop(trace_state: TraceState | None) -> SamplingResult:
    """DROP, keeping ``trace_state`` (the SDK gives the new span the result's tracestate)."""
    return _DROP if trace_state is None else SamplingResult(Decision.DROP, None, trace_state)


def probability_threshold(probability: float) -> int:
    """The 56-bit rejection threshold T for ``probability``: keep when R >= T."""
    if probability >= 1.0:
        return 0
    if probability <= 0.0:
        return _MAX_THRESHOLD
    return _MAX_THRESHOLD - max(1, round(probability * _MAX_THRESHOLD))


def _th_text(threshold: int) -> str:
    """``th`` value: 14 hex digits with trailing zeros removed ("0" for T = 0)."""
    return f"{threshold:014x}".rstrip("0") or "0"


def _ot_field(ot: str, name: str) -> str | None:
    """A sub-key of the ``ot`` tracestate value (``th:8;rv:...``), or None."""
    for part in ot.split(";"):
        key, sep, value = part.partition(":")
        if sep and key == name:
            return value
    return None


def _parse_threshold(ot: str | None) -> int | None:
    th = _ot_field(ot, "th") if ot else None
    if th is None or not 1 <= len(th) <= _TH_DIGITS or not _HEX.issuperset(th):
        return None
    return int(th.ljust(_TH_DIGITS, "0"), 16)


def _randomness(ot: str | None, trace_id: int) -> int:
    rv = _ot_field(ot, "rv") if ot else None
    if rv is not None and len(rv) == _TH_DIGITS and _HEX.issuperset(rv):
        return int(rv, 16)
    return trace_id & _RANDOM_MASK


def _with_th(trace_state: TraceState | None, th: str | None) -> TraceState:
    """``trace_state`` with its ``ot`` entry's ``th`` set to ``th`` (removed when None)."""
    state = trace_state if trace_state is not None else TraceState()
    ot = state.get("ot")
    parts = [p for p in ot.split(";") if p and not p.startswith("th:")] if ot else []
    if th is not None:
        parts.insert(0, f"th:{th}")
    if not parts:
        return state.delete("ot") if ot is not None else state
    value = ";".join(parts)
    return state.update("ot", value) if ot is not None else state.add("ot", value)


class _Operation:
    """Arrivals of one span name in the current window, and the last window's rate."""

    __slots__ = ("credit", "count", "rate", "window_start")

    def __init__(self, now: float, credit: float) -> None:
        self.window_start = now
        self.count = 0
        self.rate = 0.0
        self.credit = credit


class DyeSampler(Sampler):
    """OpenTelemetry ``Sampler``: dyed requests always, others parent-based or by probability.

    Thread-safe; ``should_sample`` never raises (on an internal error it drops
    the span and logs once).
    """

    def __init__(
        self,
        probability: float = DEFAULT_PROBABILITY,
        *,
        adaptive_per_second: float | None = None,
        rules: DyeMatcher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Args:
        probability: the share of roots sampled, 0..1 (ignored when adaptive).
        adaptive_per_second: when set, aim at this many sampled roots per
            second per span name instead of a fixed probability.
        rules: asked at entry spans whether a rule dyes the request.
        clock: monotonic seconds, for the adaptive rate estimate.

        Raises:
            ValueError: ``probability`` outside 0..1 or ``adaptive_per_second``
                not positive.
        """
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability {probability!r} is not within 0..1")
        if adaptive_per_second is not None and not adaptive_per_second > 0:
            raise ValueError(f"adaptive_per_second {adaptive_per_second!r} must be > 0")
        self._probability = probability
        self._threshold = probability_threshold(probability)
        self._per_second = adaptive_per_second
        self._rules = rules
        self._clock = clock
        self._lock = threading.Lock()
        self._operations: dict[str, _Operation] = {}
        self._failed = False
        self._rule_dyed: dict[int, str] = {}  # trace id -> dye text, see _remember_rule_dye
        self._th = _th_text(self._threshold) if self._threshold < _MAX_THRESHOLD else None
        # A sampled root started without attributes (and no incoming tracestate)
        # gets this prebuilt answer.
        self._root_sampled = SamplingResult(
            Decision.RECORD_AND_SAMPLE,
            {SAMPLING_PROBABILITY_ATTRIBUTE: probability},
            _with_th(None, self._th),
        )
        # One-entry caches of the follow-the-parent answers for spans started
        # without attributes, keyed by the parent's tracestate object (shared
        # by every span of a trace in this process).
        self._last_drop: tuple[TraceState | None, SamplingResult] = (None, _DROP)
        self._last_sample: tuple[TraceState | None, SamplingResult] = (None, _SAMPLE)

    def get_description(self) -> str:
        """E.g. ``DyeSampler{probability=0.0009765625}`` or ``DyeSampler{adaptive=10/s}``."""
        if self._per_second is not None:
            return f"DyeSampler{{adaptive={self._per_second:g}/s}}"
        return f"DyeSampler{{probability={self._probability!r}}}"

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """The decision for a span about to start; see the module docstring."""
        try:
            # Inlined for the unsampled path: one context read serves the parent
            # span and the baggage.
            ctx = parent_context if parent_context is not None else get_current()
            parent: SpanContext | None = get_current_span(ctx).get_span_context()
            if parent is not None:
                if parent.is_valid:
                    trace_state = parent.trace_state
                else:
                    parent = None
            # Most contexts carry no baggage at all: skip the dye look-up then.
            dye = context_dye(ctx) if _BAGGAGE_KEY is None or ctx.get(_BAGGAGE_KEY) else None
            if dye is None and self._rules is not None and kind in _ENTRY_KINDS:
                if parent is None or parent.is_remote or not parent.trace_flags.sampled:
                    dye = self._match(trace_id, name, kind, attributes)
                    if dye is not None:
                        self._remember_rule_dye(trace_id, dye)
            if dye is not None:
                return self._dyed(dye, trace_id, trace_state, attributes)
            if parent is not None:
                if not parent.trace_flags.sampled:
                    cached = self._last_drop
                    if cached[0] is trace_state:
                        return cached[1]
                return self._follow(parent, attributes)
            return self._root(trace_id, name, trace_state, attributes)
        except Exception:  # a sampler must never break the app's request
            if not self._failed:
                self._failed = True
                logger.exception("DyeSampler failed; dropping the span")
            return _DROP

    def _match(
        self, trace_id: int, name: str, kind: SpanKind | None, attributes: Attributes
    ) -> Dye | None:
        try:
            return self._rules.match(trace_id, name, kind, attributes) if self._rules else None
        except Exception:  # a broken rule set must not stop sampling: treat it as no match
            if not self._failed:
                self._failed = True
                logger.exception("DyeMatcher.match failed; treating it as no match")
            return None

    def _dyed(
        self, dye: Dye, trace_id: int, trace_state: TraceState | None, attributes: Attributes
    ) -> SamplingResult:
        # A dye is not a probability: if an incoming th would have dropped this
        # trace, the span is sampled anyway and th no longer describes it, so it
        # is erased (tracestate-probability-sampling, "inconsistent threshold").
        ot = trace_state.get("ot") if trace_state else None
        if ot:
            threshold = _parse_threshold(ot)
            if threshold is not None and _randomness(ot, trace_id) < threshold:
                trace_state = _with_th(trace_state, None)
        return _sampled(attributes, DYE_ATTRIBUTE, str(dye), trace_state)

    def _remember_rule_dye(self, trace_id: int, dye: Dye) -> None:
        # A rule's dye is not in the context until carry_dye puts it there, so
        # the spans started below the entry span in this process would not see
        # it: remember it by trace id (bounded, oldest forgotten first).
        with self._lock:
            if len(self._rule_dyed) >= _MAX_RULE_DYED_TRACES:
                del self._rule_dyed[next(iter(self._rule_dyed))]
            self._rule_dyed[trace_id] = str(dye)

    def _follow(self, parent: SpanContext, attributes: Attributes) -> SamplingResult:
        state = parent.trace_state
        if parent.trace_flags.sampled:
            if self._rule_dyed:
                text = self._rule_dyed.get(parent.trace_id)
                if text is not None:
                    return _sampled(attributes, DYE_ATTRIBUTE, text, state)
            if attributes:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)
            cached = self._last_sample
            if cached[0] is not state:
                cached = self._last_sample = (
                    state,
                    SamplingResult(Decision.RECORD_AND_SAMPLE, None, state),
                )
            return cached[1]
        cached = self._last_drop
        if cached[0] is not state:
            cached = self._last_drop = (state, SamplingResult(Decision.DROP, None, state))
        return cached[1]

    def _root(
        self, trace_id: int, name: str, trace_state: TraceState | None, attributes: Attributes
    ) -> SamplingResult:
        ot = trace_state.get("ot") if trace_state else None
        incoming = _parse_threshold(ot) if ot else None
        if incoming is not None:
            if _randomness(ot, trace_id) < incoming:
                return _drop(trace_state)
            probability = (_MAX_THRESHOLD - incoming) / _MAX_THRESHOLD
            return _sampled(attributes, SAMPLING_PROBABILITY_ATTRIBUTE, probability, trace_state)
        if self._per_second is not None:
            return self._adaptive(trace_id, name, trace_state, attributes)
        if _randomness(ot, trace_id) < self._threshold:
            return _drop(trace_state)
        if trace_state is None and not attributes:
            return self._root_sampled
        return _sampled(
            attributes,
            SAMPLING_PROBABILITY_ATTRIBUTE,
            self._probability,
            _with_th(trace_state, self._th),
        )

    def _adaptive(
        self, trace_id: int, name: str, trace_state: TraceState | None, attributes: Attributes
    ) -> SamplingResult:
        # The rate is estimated per span name as the larger of a sliding
        # one-second window (last window's rate, weighted by how much of it the
        # current window has not yet replaced) and the current window's own
        # rate (so a burst is seen at once); p = N / rate. The keep decision is
        # systematic (a credit accumulates p; a root is kept each time it
        # reaches 1), so the count per second is close to N rather than
        # binomial around it, while each root is still kept with probability
        # p, the figure recorded. Being by arrival rather than by trace id, it
        # is not consistent in the tracestate sense, so no th is written.
        per_second = self._per_second
        assert per_second is not None
        now = self._clock()
        with self._lock:
            op = self._operations.get(name)
            if op is None and len(self._operations) >= _MAX_OPERATIONS:
                name = _OTHER_OPERATIONS
                op = self._operations.get(name)
            if op is None:
                # The first root of an operation is kept, so every operation
                # shows up; the credit starts at a random phase.
                op = self._operations[name] = _Operation(
                    now, (trace_id & _RANDOM_MASK) / _MAX_THRESHOLD
                )
                op.count = 1
                probability, keep = 1.0, True
            else:
                elapsed = now - op.window_start
                if elapsed >= _WINDOW_SECONDS or elapsed < 0:
                    op.rate = op.count / elapsed if elapsed > 0 else 0.0
                    op.window_start, op.count, elapsed = now, 0, 0.0
                op.count += 1
                sliding = (op.count + op.rate * (_WINDOW_SECONDS - elapsed)) / _WINDOW_SECONDS
                burst = (op.count - 1) / max(elapsed, _BURST_FLOOR_SECONDS)
                rate = max(sliding, burst)
                probability = per_second / rate if rate > per_second else 1.0
                op.credit += probability
                keep = op.credit >= 1.0
                if keep:
                    op.credit -= 1.0
        if not keep:
            return _drop(trace_state)
        return _sampled(attributes, SAMPLING_PROBABILITY_ATTRIBUTE, probability, trace_state)
