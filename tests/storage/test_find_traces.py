"""Jaeger FindTraces semantics, identical on every backend."""

from __future__ import annotations

import pytest

from tinct.spans import TraceQuery, tag_entry

from .spanrows import BASE_NS, DAY_NS, MS, batch, span, trace_id

T = BASE_NS
A, B, C, D, E = (trace_id(n) for n in range(101, 106))


def _tags(**kv: str) -> list[str]:
    return [tag_entry(k.replace("_", "."), v) for k, v in kv.items()]


@pytest.fixture
def shop(store):
    """Five traces of a small shop; the comments give what each is for."""
    store.write_spans(
        batch(
            # A: oldest; a frontend root calling the backend (another service).
            span(
                trace_id=A,
                service="frontend",
                name="GET /",
                kind=2,
                start_ns=T,
                duration_ns=100 * MS,
                tags=_tags(http_method="GET"),
            ),
            span(
                trace_id=A,
                service="backend",
                name="SELECT",
                kind=3,
                start_ns=T + 10 * MS,
                duration_ns=50 * MS,
                tags=_tags(db_system="postgresql"),
            ),
            # B: the two tags sit on different spans, so no single span has both.
            span(
                trace_id=B,
                service="frontend",
                name="GET /",
                kind=2,
                start_ns=T + 1000 * MS,
                duration_ns=10 * MS,
                tags=_tags(http_method="POST"),
            ),
            span(
                trace_id=B,
                service="frontend",
                name="auth",
                kind=1,
                start_ns=T + 1001 * MS,
                duration_ns=1 * MS,
                tags=_tags(user="bob"),
            ),
        )
    )
    store.write_spans(
        batch(
            # C: newest frontend activity, a slow POST.
            span(
                trace_id=C,
                service="frontend",
                name="POST /pay",
                kind=2,
                start_ns=T + 2000 * MS,
                duration_ns=1000 * MS,
                tags=_tags(http_method="POST", user="bob"),
            ),
            # D: a frontend span at +500 ms but a much later backend span: ranks by
            # its newest *matching* span.
            span(
                trace_id=D,
                service="frontend",
                name="GET /",
                kind=2,
                start_ns=T + 500 * MS,
                duration_ns=100 * MS,
            ),
            span(
                trace_id=D,
                service="backend",
                name="batch",
                kind=1,
                start_ns=T + 5 * DAY_NS,
                duration_ns=1,
            ),
            # E: backend only.
            span(
                trace_id=E,
                service="backend",
                name="SELECT",
                kind=3,
                start_ns=T + 3000 * MS,
                duration_ns=-5,
            ),
        )
    )
    return store


def ids(traces) -> list[bytes]:
    assert all(len({s["trace_id"] for s in t}) == 1 for t in traces)
    return [t[0]["trace_id"] for t in traces]


def find(store, **kw) -> list[bytes]:
    return ids(store.find_traces(TraceQuery(**kw)))


def test_service_returns_whole_traces_newest_first(shop):
    traces = shop.find_traces(TraceQuery(service="frontend"))
    assert ids(traces) == [C, B, D, A]
    by_id = {t[0]["trace_id"]: t for t in traces}
    # Whole traces: spans of other services and non-matching spans included,
    # ordered by start.
    assert [(s["service"], s["name"]) for s in by_id[A]] == [
        ("frontend", "GET /"),
        ("backend", "SELECT"),
    ]
    assert [s["name"] for s in by_id[D]] == ["GET /", "batch"]
    assert len(by_id[B]) == 2


def test_unknown_service_finds_nothing(shop):
    assert find(shop, service="nope") == []
    assert find(shop, service="") == []


def test_operation_and_kind(shop):
    assert find(shop, service="frontend", operation="GET /") == [B, D, A]
    assert find(shop, service="backend", operation="SELECT") == [E, A]
    assert find(shop, service="frontend", span_kind=1) == [B]
    assert find(shop, service="frontend", operation="auth", span_kind=2) == []
    assert find(shop, service="frontend", span_kind=300) == []


def test_tags_must_all_match_on_one_span(shop):
    assert find(shop, service="frontend", tags={"http.method": "POST"}) == [C, B]
    assert find(shop, service="frontend", tags={"http.method": "POST", "user": "bob"}) == [C]
    assert find(shop, service="frontend", tags={"http.method": "PUT"}) == []
    assert find(shop, service="backend", tags={"db.system": "postgresql"}) == [A]


def test_duration_bounds_are_inclusive(shop):
    assert find(shop, service="frontend", duration_min_ns=100 * MS) == [C, D, A]
    assert find(shop, service="frontend", duration_max_ns=10 * MS) == [B]
    assert find(shop, service="frontend", duration_min_ns=10 * MS, duration_max_ns=10 * MS) == [B]
    assert find(shop, service="backend", duration_max_ns=0) == [E]
    assert find(shop, service="backend", duration_min_ns=2**70) == []
    assert find(shop, service="backend", duration_max_ns=-(2**70)) == []


def test_start_bounds_are_inclusive(shop):
    assert find(shop, service="frontend", start_min_ns=T + 500 * MS) == [C, B, D]
    assert find(shop, service="frontend", start_max_ns=T + 500 * MS) == [D, A]
    assert find(
        shop, service="frontend", start_min_ns=T + 500 * MS, start_max_ns=T + 1000 * MS
    ) == [B, D]
    assert find(shop, service="frontend", start_max_ns=-1) == []
    assert find(shop, service="frontend", start_min_ns=2**64) == []
    assert find(shop, service="frontend", start_min_ns=-5, start_max_ns=2**80) == [C, B, D, A]


def test_limit_keeps_the_newest(shop):
    assert find(shop, service="frontend", limit=2) == [C, B]
    assert find(shop, service="frontend", limit=1) == [C]
    assert find(shop, service="frontend", limit=0) == []


def test_awkward_tag_values_are_matched_literally(store):
    value = "it's \\ \t'x' %s {p0:String} ünï"
    tid = trace_id()
    store.write_spans(batch(span(trace_id=tid, service="s", tags=[tag_entry("k'", value)])))
    assert find(store, service="s", tags={"k'": value}) == [tid]
    assert find(store, service="s", tags={"k'": value[:-1]}) == []
    assert find(store, service="s", tags={"k": value}) == []


def test_numeric_tag_matches_a_double_of_the_same_value(store):
    """Jaeger prints doubles with %g, so tags={"x":72} finds x=72.0 (stored "72.0")."""
    tid = trace_id(301)
    store.write_spans(
        batch(
            span(
                trace_id=tid,
                service="numbers",
                attr_keys=["x", "y", "n"],
                attr_types=[4, 4, 3],
                attr_values=["72.0", "72.5", "123"],
            )
        )
    )

    def found(**tags: str) -> bool:
        return bool(store.find_traces(TraceQuery(service="numbers", tags=tags)))

    assert found(x="72") and found(x="72.0") and found(x="7.2e1") and found(y="72.5")
    assert not found(x="73") and not found(x="seventy-two")
    # Integers compare as text, as in Jaeger.
    assert found(n="123") and not found(n="123.0")


def test_dependencies_between_services(store):
    """Jaeger's rule: a child whose parent is in another service is one call."""
    tid = trace_id(401)
    root, mid, leaf, same = (bytes([0] * 7 + [n]) for n in (1, 2, 3, 4))
    store.write_spans(
        batch(
            span(trace_id=tid, span_id=root, service="web", start_ns=T),
            span(trace_id=tid, span_id=mid, parent_span_id=root, service="api", start_ns=T + MS),
            span(trace_id=tid, span_id=leaf, parent_span_id=mid, service="db", start_ns=T + 2 * MS),
            span(trace_id=tid, span_id=same, parent_span_id=mid, service="api",
                 start_ns=T + 3 * MS),
            # A second call web -> api in another trace; its parent is missing (not counted).
            span(trace_id=trace_id(402), span_id=mid, parent_span_id=root, service="api",
                 start_ns=T + 4 * MS),
        )
    )  # fmt: skip
    assert store.dependencies(T, T + DAY_NS) == [("api", "db", 1), ("web", "api", 1)]
    # Only children starting in the window count.
    assert store.dependencies(T + 2 * MS, T + 2 * MS) == [("api", "db", 1)]
    assert store.dependencies(T + 5 * MS, T + DAY_NS) == []


def test_dependencies_join_parents_whose_span_id_ends_in_a_zero_byte(store):
    # toString(FixedString) drops trailing zero bytes: the join must not use it.
    trace = trace_id()
    parent = b"\x07" * 7 + b"\x00"
    store.write_spans(
        batch(
            span(trace_id=trace, span_id=parent, service="web", start_ns=T),
            span(trace_id=trace, parent_span_id=parent, service="api", start_ns=T + MS),
        )
    )
    assert store.dependencies(T, T + DAY_NS) == [("web", "api", 1)]
