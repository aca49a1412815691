"""DyeSampler with the real OpenTelemetry SDK: dyes, parents, probabilities, ot=th, adaptive."""

from __future__ import annotations

import random
from typing import Any

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as context_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import TraceState

from tinct.tracing.dye import DYE_ATTRIBUTE, SAMPLING_PROBABILITY_ATTRIBUTE, Dye, set_dye
from tinct.tracing.dyeing import DyeRule, StaticDyeMatcher, dye
from tinct.tracing.processors import DyeSpanProcessor
from tinct.tracing.sampler import DyeSampler, probability_threshold

PARENT_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_SPAN = 0x00F067AA0BA902B7


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _setup(sampler: DyeSampler) -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(DyeSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def _remote_parent(sampled: bool, trace_state: TraceState | None = None) -> Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    ctx = SpanContext(
        PARENT_TRACE, PARENT_SPAN, is_remote=True, trace_flags=flags, trace_state=trace_state
    )
    return trace.set_span_in_context(NonRecordingSpan(ctx))


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_probability_zero_records_nothing() -> None:
    tracer, exporter = _setup(DyeSampler(0.0))
    with tracer.start_as_current_span("root") as span:
        assert isinstance(span, NonRecordingSpan)
        with tracer.start_as_current_span("child") as child:
            assert not child.is_recording()
    assert exporter.get_finished_spans() == ()


def test_probability_one_records_every_root_with_its_probability() -> None:
    tracer, exporter = _setup(DyeSampler(1.0))
    for _ in range(20):
        with tracer.start_as_current_span("root"):
            with tracer.start_as_current_span("child"):
                pass
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.parent is None]
    children = [s for s in spans if s.parent is not None]
    assert len(roots) == 20 and len(children) == 20
    assert all(_attrs(s)[SAMPLING_PROBABILITY_ATTRIBUTE] == 1.0 for s in roots)
    # Only roots carry the probability; children follow the parent.
    assert all(SAMPLING_PROBABILITY_ATTRIBUTE not in _attrs(s) for s in children)
    # The root announces its threshold to OpenTelemetry-consistent samplers downstream.
    assert roots[0].context.trace_state.get("ot") == "th:0"


def test_quarter_probability_is_accurate_and_deterministic_per_trace_id() -> None:
    sampler = DyeSampler(0.25)
    rng = random.Random(7)
    ids = [rng.getrandbits(128) for _ in range(20_000)]
    decisions = [sampler.should_sample(None, i, "op").decision for i in ids]
    share = sum(d is Decision.RECORD_AND_SAMPLE for d in decisions) / len(ids)
    assert 0.23 <= share <= 0.27
    again = [DyeSampler(0.25).should_sample(None, i, "other").decision for i in ids[:2000]]
    assert again == decisions[:2000]
    kept = next(i for i, d in zip(ids, decisions, strict=True) if d is Decision.RECORD_AND_SAMPLE)
    result = sampler.should_sample(None, kept, "op")
    assert result.attributes[SAMPLING_PROBABILITY_ATTRIBUTE] == 0.25
    assert result.trace_state is not None and result.trace_state.get("ot") == "th:c"


def test_dyed_context_records_every_nested_span() -> None:
    tracer, exporter = _setup(DyeSampler(0.0))
    with dye("user:42"):
        with tracer.start_as_current_span("root"):
            with tracer.start_as_current_span("child"):
                with tracer.start_as_current_span("grandchild"):
                    pass
    with tracer.start_as_current_span("undyed"):
        pass
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["child", "grandchild", "root"]
    assert all(_attrs(s)[DYE_ATTRIBUTE] == "user:42" for s in spans)
    assert all(SAMPLING_PROBABILITY_ATTRIBUTE not in _attrs(s) for s in spans)


def test_dye_added_at_this_hop_records_under_an_unsampled_remote_parent() -> None:
    tracer, exporter = _setup(DyeSampler(0.0))
    # As a server instrumentation does: attach the extracted context (traceparent
    # flags 00, baggage with the dye), then start the SERVER span in it.
    token = context_api.attach(set_dye(Dye("tenant", "acme"), _remote_parent(sampled=False)))
    try:
        with tracer.start_as_current_span("handler", kind=SpanKind.SERVER) as span:
            assert span.get_span_context().trace_flags.sampled
            with tracer.start_as_current_span("db"):
                pass
    finally:
        context_api.detach(token)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    handler = spans["handler"]
    assert handler.context.trace_id == PARENT_TRACE
    assert handler.parent is not None and handler.parent.span_id == PARENT_SPAN
    assert spans["db"].parent is not None
    assert spans["db"].parent.span_id == handler.context.span_id
    assert _attrs(handler)[DYE_ATTRIBUTE] == "tenant:acme"
    assert _attrs(spans["db"])[DYE_ATTRIBUTE] == "tenant:acme"


def test_undyed_spans_follow_the_parent_flag_and_keep_its_tracestate() -> None:
    tracer, exporter = _setup(DyeSampler(0.0))
    state = TraceState([("vendor", "x")])
    with tracer.start_as_current_span("in", context=_remote_parent(True, state)) as span:
        assert span.is_recording()
        assert span.get_span_context().trace_state.get("vendor") == "x"
    with tracer.start_as_current_span("out", context=_remote_parent(False, state)) as span:
        assert not span.is_recording()
        assert span.get_span_context().trace_state.get("vendor") == "x"
    (kept,) = exporter.get_finished_spans()
    assert kept.name == "in" and SAMPLING_PROBABILITY_ATTRIBUTE not in _attrs(kept)


def test_rule_dyes_a_matching_entry_span_with_ratio_and_expiry() -> None:
    clock = Clock(now=1_700_000_000.0)
    matcher = StaticDyeMatcher(
        [DyeRule("r1", "user", "", "42", ratio=1.0, expires_at=clock.now + 60)], clock=clock
    )
    tracer, exporter = _setup(DyeSampler(0.0, rules=matcher))
    attrs = {"enduser.id": "42"}
    with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER, attributes=attrs):
        with tracer.start_as_current_span("db"):
            pass
    with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER, attributes={}):
        pass  # no enduser.id
    with tracer.start_as_current_span("job", kind=SpanKind.INTERNAL, attributes=attrs):
        pass  # not an entry span
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["GET /orders", "db"]
    assert all(_attrs(s)[DYE_ATTRIBUTE] == "user:42" for s in spans)

    exporter.clear()
    clock.now += 61  # the rule has expired
    with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER, attributes=attrs):
        pass
    assert exporter.get_finished_spans() == ()

    matcher.replace_rules([DyeRule("r2", "user", "", "42", ratio=0.25)])
    sampler = DyeSampler(0.0, rules=matcher)
    rng = random.Random(3)
    ids = [rng.getrandbits(128) for _ in range(8000)]
    dyed = [
        sampler.should_sample(None, i, "GET", SpanKind.SERVER, attrs).decision
        is Decision.RECORD_AND_SAMPLE
        for i in ids
    ]
    assert 0.22 <= sum(dyed) / len(dyed) <= 0.28
    again = [
        sampler.should_sample(None, i, "GET", SpanKind.SERVER, attrs).decision
        is Decision.RECORD_AND_SAMPLE
        for i in ids
    ]
    assert again == dyed


def test_rule_applies_under_a_remote_unsampled_parent_but_not_under_a_local_sampled_one() -> None:
    matcher = StaticDyeMatcher([DyeRule("r", "tenant", "", "acme")])
    tracer, exporter = _setup(DyeSampler(0.0, rules=matcher))
    attrs = {"tenant.id": "acme"}
    ctx = _remote_parent(sampled=False)
    with tracer.start_as_current_span("in", context=ctx, kind=SpanKind.SERVER, attributes=attrs):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.context.trace_id == PARENT_TRACE and _attrs(span)[DYE_ATTRIBUTE] == "tenant:acme"

    exporter.clear()
    sampled_tracer, sampled_exporter = _setup(DyeSampler(1.0, rules=matcher))
    with sampled_tracer.start_as_current_span("outer"):
        with sampled_tracer.start_as_current_span("inner", kind=SpanKind.SERVER, attributes=attrs):
            pass
    inner = next(s for s in sampled_exporter.get_finished_spans() if s.name == "inner")
    assert DYE_ATTRIBUTE not in _attrs(inner)


def test_ot_threshold_in_tracestate_is_honoured_at_roots() -> None:
    sampler = DyeSampler(0.0)
    rng = random.Random(11)
    ids = [rng.getrandbits(128) for _ in range(4000)]
    everything = TraceState([("ot", "th:0")])
    results = [sampler.should_sample(None, i, "op", trace_state=everything) for i in ids]
    assert all(r.decision is Decision.RECORD_AND_SAMPLE for r in results)
    assert results[0].attributes[SAMPLING_PROBABILITY_ATTRIBUTE] == 1.0

    half = TraceState([("ot", "th:8")])
    results = [sampler.should_sample(None, i, "op", trace_state=half) for i in ids]
    kept = [r for r in results if r.decision is Decision.RECORD_AND_SAMPLE]
    assert 0.47 <= len(kept) / len(ids) <= 0.53
    assert all(r.attributes[SAMPLING_PROBABILITY_ATTRIBUTE] == 0.5 for r in kept)
    # Exactly the ids whose 56 random bits reach the threshold.
    for i, r in zip(ids, results, strict=True):
        assert r.decision.is_sampled() == ((i & ((1 << 56) - 1)) >= 1 << 55)

    # An explicit rv overrides the trace id's randomness.
    low = TraceState([("ot", "th:8;rv:00000000000001")])
    high = TraceState([("ot", "rv:ff000000000000;th:8")])
    assert not sampler.should_sample(None, ids[0], "op", trace_state=low).decision.is_sampled()
    assert sampler.should_sample(None, ids[0], "op", trace_state=high).decision.is_sampled()


def test_dye_erases_a_threshold_that_would_have_dropped_the_trace() -> None:
    sampler = DyeSampler(0.0)
    state = TraceState([("ot", "th:8;rv:00000000000001"), ("vendor", "x")])
    ctx = set_dye(Dye("user", "7"), _remote_parent(False, state))
    result = sampler.should_sample(ctx, PARENT_TRACE, "op")
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert result.trace_state is not None
    assert result.trace_state.get("ot") == "rv:00000000000001"
    assert result.trace_state.get("vendor") == "x"


def test_probability_threshold() -> None:
    assert probability_threshold(1.0) == 0
    assert probability_threshold(0.5) == 1 << 55
    assert probability_threshold(0.0) == 1 << 56


def test_adaptive_meets_the_target_per_operation() -> None:
    clock = Clock()
    sampler = DyeSampler(adaptive_per_second=10, clock=clock)
    rng = random.Random(5)
    kept: dict[str, int] = {"a": 0, "b": 0}
    probabilities: list[float] = []
    for n in range(1000):
        clock.now = 1000.0 + n / 1000
        for op in ("a", "b"):
            result = sampler.should_sample(None, rng.getrandbits(128), op)
            if result.decision.is_sampled():
                kept[op] += 1
                probabilities.append(result.attributes[SAMPLING_PROBABILITY_ATTRIBUTE])
    assert 7 <= kept["a"] <= 13 and 7 <= kept["b"] <= 13
    assert probabilities[0] == 1.0  # an operation's first root is always kept
    assert all(0.005 < p < 0.02 for p in probabilities[4:])

    # Steady over ten more seconds at 1000/s: about 10 per second.
    for op in ("a", "b"):
        kept[op] = 0
    for n in range(10_000):
        clock.now = 1001.0 + n / 1000
        for op in ("a", "b"):
            if sampler.should_sample(None, rng.getrandbits(128), op).decision.is_sampled():
                kept[op] += 1
    assert 90 <= kept["a"] <= 110 and 90 <= kept["b"] <= 110

    # Below the target every root is kept.
    slow = DyeSampler(adaptive_per_second=10, clock=clock)
    count = 0
    for n in range(50):
        clock.now = 5000.0 + n / 5
        count += slow.should_sample(None, rng.getrandbits(128), "slow").decision.is_sampled()
    assert count == 50


def test_adaptive_bounds_the_operations_it_tracks() -> None:
    clock = Clock()
    sampler = DyeSampler(adaptive_per_second=1, clock=clock)
    for n in range(3000):
        sampler.should_sample(None, n, f"op-{n}")
    assert len(sampler._operations) <= 1001


@pytest.mark.parametrize(
    "parent_context",
    [
        None,
        Context(),
        trace.set_span_in_context(trace.INVALID_SPAN),
        baggage.set_baggage("tinct.dye", "no-colon"),
        baggage.set_baggage("tinct.dye", 42),
        baggage.set_baggage("tinct.dye", "x" * 5000),
    ],
)
def test_never_raises_on_odd_inputs(parent_context: Context | None) -> None:
    odd_rules = StaticDyeMatcher([DyeRule("r", "header", "X-Debug", "1")])
    for sampler in (DyeSampler(0.0, rules=odd_rules), DyeSampler(adaptive_per_second=1)):
        for attributes in (None, {}, {"http.request.header.x-debug": 5}, {"enduser.id": None}):
            result = sampler.should_sample(
                parent_context, 0, "", SpanKind.SERVER, attributes, trace_state=TraceState()
            )
            assert result.decision in (Decision.DROP, Decision.RECORD_AND_SAMPLE)
        bad = TraceState([("ot", "th:zz;rv:short")])
        assert sampler.should_sample(parent_context, 1, "x", None, None, None, bad) is not None


def test_a_failing_matcher_counts_as_no_match() -> None:
    class Broken:
        def match(self, trace_id: int, name: str, kind: Any, attributes: Any) -> Dye | None:
            raise RuntimeError("boom")

    sampler = DyeSampler(1.0, rules=Broken())
    result = sampler.should_sample(None, 1, "x", SpanKind.SERVER, {"enduser.id": "1"})
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert DYE_ATTRIBUTE not in result.attributes


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(ValueError, match="probability"):
        DyeSampler(1.5)
    with pytest.raises(ValueError, match="adaptive_per_second"):
        DyeSampler(adaptive_per_second=0)
    assert "1/s" in DyeSampler(adaptive_per_second=1).get_description()


@pytest.mark.parametrize(
    "how", ["root", "dyed", "rule", "remote sampled parent", "adaptive", "th", "child"]
)
def test_sampled_spans_keep_the_attributes_they_started_with(how: str) -> None:
    matcher = StaticDyeMatcher([DyeRule("r", "user", "", "42")])
    if how == "adaptive":
        sampler = DyeSampler(adaptive_per_second=5, clock=Clock())
    else:
        sampler = DyeSampler(1.0 if how in ("root", "child") else 0.0, rules=matcher)
    tracer, exporter = _setup(sampler)
    attrs = {"enduser.id": "42" if how == "rule" else "7", "http.route": "/x"}
    ctx: Context | None = None
    if how == "dyed":
        ctx = set_dye(Dye("user", "7"))
    elif how == "remote sampled parent":
        ctx = _remote_parent(sampled=True)
    elif how == "th":
        sampler_result = sampler.should_sample(
            None, 1, "x", SpanKind.SERVER, attrs, trace_state=TraceState([("ot", "th:0")])
        )
        assert sampler_result.attributes["http.route"] == "/x"
        return
    kind = SpanKind.SERVER
    if how == "child":
        with tracer.start_as_current_span("parent"):
            with tracer.start_as_current_span("x", kind=kind, attributes=attrs):
                pass
    else:
        with tracer.start_as_current_span("x", context=ctx, kind=kind, attributes=attrs):
            pass
    span = next(s for s in exporter.get_finished_spans() if s.name == "x")
    assert _attrs(span)["http.route"] == "/x"
    assert _attrs(span)["enduser.id"] == attrs["enduser.id"]


def test_children_of_a_rule_dyed_entry_span_carry_the_dye_without_the_processor() -> None:
    exporter = InMemorySpanExporter()
    matcher = StaticDyeMatcher([DyeRule("r", "user", "", "42")])
    provider = TracerProvider(sampler=DyeSampler(0.0, rules=matcher))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    attrs = {"enduser.id": "42"}
    with tracer.start_as_current_span("in", kind=SpanKind.SERVER, attributes=attrs):
        with tracer.start_as_current_span("db", attributes={"db.system.name": "sqlite"}) as db:
            assert db.is_recording()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert _attrs(spans["db"]) == {"db.system.name": "sqlite", DYE_ATTRIBUTE: "user:42"}

    # The memory of rule-dyed traces is bounded.
    sampler = DyeSampler(0.0, rules=matcher)
    for trace_id in range(1, 6000):
        sampler.should_sample(None, trace_id, "in", SpanKind.SERVER, attrs)
    assert len(sampler._rule_dyed) <= 4096
