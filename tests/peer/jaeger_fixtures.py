"""Jaeger's storage integration fixtures, loaded the way Jaeger's runner loads them.

Jaeger's runner shifts the fixtures' dates so they fall in a recent window
(2017-01-26 becomes yesterday, 2017-01-25 two days ago); we shift every
timestamp by the same whole number of days, which does both at once.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinct.spans import TraceQuery

FIXTURES = (
    Path(__file__).resolve().parents[3] / "shared" / "peer-suites" / "jaeger-storage" / "fixtures"
)
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
