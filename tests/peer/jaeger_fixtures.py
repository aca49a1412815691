"""Jaeger's storage integration fixtures, loaded the way Jaeger's runner loads them.

Jaeger's runner shifts the fixtures' dates so they fall in a recent window
(2017-01-26 becomes yesterday, 2017-01-25 two days ago); we shift every
timestamp by the same whole number of days, which does both at once.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from tests.peer_suites import require_peer_suite
from tinct.spans import TraceQuery

FIXTURES = require_peer_suite("jaeger-storage") / "fixtures"
_FIXTURE_DAY = dt.date(2017, 1, 26)
_TIME_KEYS = ("startTimeUnixNano", "endTimeUnixNano", "timeUnixNano")


def day_shift_ns(today: dt.date | None = None) -> int:
    today = today or dt.datetime.now(dt.UTC).date()
    return (today - dt.timedelta(days=1) - _FIXTURE_DAY).days * 86_400 * 10**9


def _shift(node: Any, delta_ns: int) -> Any:
    if isinstance(node, dict):
        return {
            k: (str(int(v) + delta_ns) if k in _TIME_KEYS else _shift(v, delta_ns))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_shift(v, delta_ns) for v in node]
    return node


def load_fixture(name: str, delta_ns: int) -> dict[str, Any]:
    data = json.loads((FIXTURES / "traces" / f"{name}.json").read_text())
    return _shift(data, delta_ns)  # type: ignore[no-any-return]


def fixture_names() -> list[str]:
    return sorted(p.stem for p in (FIXTURES / "traces").glob("*.json"))


@dataclass(frozen=True)
class QueryCase:
    caption: str
    query: TraceQuery
    raw: dict[str, Any]
    expected: list[str]


def _parse_time(text: str) -> int:
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


def _tag_text(value: Any) -> str:
    # Jaeger compares typed tags by their string form.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def query_cases(delta_ns: int) -> list[QueryCase]:
    cases = []
    for case in json.loads((FIXTURES / "queries.json").read_text()):
        q = case["Query"]
        cases.append(
            QueryCase(
                caption=case["Caption"],
                raw=q,
                expected=case["ExpectedFixtures"],
                query=TraceQuery(
                    service=q["ServiceName"],
                    operation=q["OperationName"],
                    tags={k: _tag_text(v) for k, v in (q["Tags"] or {}).items()},
                    start_min_ns=_parse_time(q["StartTimeMin"]) + delta_ns,
                    start_max_ns=_parse_time(q["StartTimeMax"]) + delta_ns,
                    duration_min_ns=q["DurationMin"] or None,
                    duration_max_ns=q["DurationMax"] or None,
                    limit=q["NumTraces"],
                ),
            )
        )
    return cases


def trace_ids_of(traces_data: dict[str, Any]) -> set[str]:
    return {
        span["traceId"].lower()
        for rs in traces_data["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    }


# --- The fixtures as Jaeger's v1 query API shows them -----------------------
#
# Written from the OTLP-to-Jaeger rules (opentelemetry-collector-contrib
# pkg/translator/jaeger, traces_to_jaegerproto.go) for what the fixtures use,
# without tinct's encoder, so the HTTP suite checks tinct's v1 traces against
# an independent reading of the fixtures.

_KIND_TAGS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _v1_tag(kv: dict[str, Any]) -> dict[str, Any]:
    value = kv["value"]
    if "stringValue" in value:
        typed: tuple[str, Any] = ("string", value["stringValue"])
    elif "boolValue" in value:
        typed = ("bool", bool(value["boolValue"]))
    elif "intValue" in value:
        typed = ("int64", int(value["intValue"]))
    elif "doubleValue" in value:
        typed = ("float64", float(value["doubleValue"]))
    elif "bytesValue" in value:
        typed = ("binary", value["bytesValue"])  # base64, as Go's encoding/json writes []byte
    else:
        raise ValueError(f"fixture value not covered here: {value}")
    return {"key": kv["key"], "type": typed[0], "value": typed[1]}


def _v1_string(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "type": "string", "value": value}


def tag_order(tags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tags in a canonical order, so lists compare as multisets."""
    return sorted(tags, key=lambda t: (t["key"], t["type"], repr(t["value"])))


def expected_v1_spans(traces_data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """span id (hex) -> the span as Jaeger's v1 API shows it, process inlined.

    Tags are in :func:`tag_order`; references in Jaeger's order (the parent
    first, then links); times in microseconds.
    """
    out: dict[str, dict[str, Any]] = {}
    for rs in traces_data["resourceSpans"]:
        resource = rs.get("resource", {}).get("attributes", [])
        service = next(
            (kv["value"]["stringValue"] for kv in resource if kv["key"] == "service.name"), ""
        )
        process = {
            "serviceName": service,
            "tags": tag_order([_v1_tag(kv) for kv in resource if kv["key"] != "service.name"]),
        }
        for ss in rs["scopeSpans"]:
            scope = ss.get("scope", {})
            scope_tags = [
                _v1_string(key, scope[field])
                for key, field in (("otel.scope.name", "name"), ("otel.scope.version", "version"))
                if scope.get(field)
            ]
            for span in ss["spans"]:
                trace_id = span["traceId"].lower()
                refs = []
                if span.get("parentSpanId"):
                    refs.append(
                        {"refType": "CHILD_OF", "traceID": trace_id, "spanID": span["parentSpanId"]}
                    )
                for link in span.get("links", []):
                    attrs = {kv["key"]: kv["value"] for kv in link.get("attributes", [])}
                    child = attrs.get("opentracing.ref_type") == {"stringValue": "child_of"}
                    refs.append(
                        {
                            "refType": "CHILD_OF" if child else "FOLLOWS_FROM",
                            "traceID": link["traceId"].lower(),
                            "spanID": link["spanId"].lower(),
                        }
                    )
                tags = scope_tags + [_v1_tag(kv) for kv in span.get("attributes", [])]
                if span.get("kind") in _KIND_TAGS:
                    tags.append(_v1_string("span.kind", _KIND_TAGS[span["kind"]]))
                logs = []
                for event in span.get("events", []):
                    fields = [_v1_string("event", event["name"])] if event.get("name") else []
                    fields += [_v1_tag(kv) for kv in event.get("attributes", [])]
                    logs.append({"timestamp": int(event["timeUnixNano"]) // 1000, "fields": fields})
                start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
                out[span["spanId"].lower()] = {
                    "traceID": trace_id,
                    "operationName": span["name"],
                    "references": refs,
                    "startTime": start // 1000,
                    "duration": (end - start) // 1000,
                    "tags": tag_order(tags),
                    "logs": logs,
                    "process": process,
                }
    return out
