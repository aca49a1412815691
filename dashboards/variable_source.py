"""Where query variables get their options: the Prometheus API's metadata and queries.

Grafana's Prometheus variable queries (``label_values``, ``label_names``,
``metrics``, ``query_result``, a bare series selector) are answered by three
calls of Prometheus's HTTP API: ``/api/v1/labels``, ``/api/v1/label/<name>/values``
(with ``match[]`` selectors) and an instant ``/api/v1/query``.
:class:`VariableSource` is those three; tinct's query layer
(``tinct.dashboards.query.TinctClient``) is one, :class:`InMemoryVariableSource`
another, for tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from tinct.metrics import Matcher
from tinct.promql.api_params import parse_match_params

__all__ = ["VariableSource", "InMemoryVariableSource"]

Sample = tuple[dict[str, str], float]


class VariableSource(Protocol):
    """The Prometheus API calls variable queries need. Calls may block (HTTP)."""

    def label_names(self, matchers: Sequence[str], start_s: float, end_s: float) -> list[str]:
        """Label names of the series matching any of ``matchers`` (all series when empty)."""
        ...

    def label_values(
        self, label: str, matchers: Sequence[str], start_s: float, end_s: float
    ) -> list[str]:
        """Values of ``label`` on the series matching any of ``matchers`` (all when empty)."""
        ...

    def query(self, expr: str, time_s: float) -> list[tuple[dict[str, str], float]]:
        """An instant query's vector: each series' labels and value."""
        ...


class InMemoryVariableSource:
    """A :class:`VariableSource` over a fixed list of series, for tests.

    Selectors are matched with Prometheus's semantics (``=``, ``!=``, ``=~``,
    ``!~``, regexes anchored at both ends, an absent label matching as "");
    a selector that is not valid PromQL raises like the API answers 400.
    Queries answer from ``results`` by exact expression (an empty vector
    otherwise). Every call is recorded in ``calls``. Not thread-safe.

    Args:
        series: the label sets of the stored series (``__name__`` included).
        results: instant query answers by expression.
    """

    def __init__(
        self,
        series: Sequence[Mapping[str, str]],
        results: Mapping[str, Sequence[Sample]] | None = None,
    ) -> None:
        self.series = [dict(s) for s in series]
        self.results = {expr: list(r) for expr, r in (results or {}).items()}
        self.calls: list[tuple[str, ...]] = []

    def _matching(self, matchers: Sequence[str]) -> list[dict[str, str]]:
        if not matchers:
            return self.series
        sets = parse_match_params(list(matchers))
        return [s for s in self.series if any(_matches(s, group) for group in sets)]

    def label_names(self, matchers: Sequence[str], start_s: float, end_s: float) -> list[str]:
        """Sorted label names of the matching series."""
        self.calls.append(("label_names", *matchers))
        return sorted({name for s in self._matching(matchers) for name, v in s.items() if v})

    def label_values(
        self, label: str, matchers: Sequence[str], start_s: float, end_s: float
    ) -> list[str]:
        """Sorted, distinct non-empty values of ``label`` on the matching series."""
        self.calls.append(("label_values", label, *matchers))
        return sorted({s[label] for s in self._matching(matchers) if s.get(label)})

    def query(self, expr: str, time_s: float) -> list[tuple[dict[str, str], float]]:
        """The answer stored for ``expr``, an empty vector when there is none."""
        self.calls.append(("query", expr))
        return [(dict(labels), value) for labels, value in self.results.get(expr, [])]


def _matches(series: Mapping[str, str], matchers: Sequence[Matcher]) -> bool:
    return all(m.matches(series.get(m.name, "")) for m in matchers)
