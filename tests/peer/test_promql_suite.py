"""Prometheus's own PromQL test scripts, run through tinct's engine.

Each core ``.test`` file is loaded into an in-memory store and every eval
is run as Prometheus's promqltest runs it (see ``promql_script``). A few
files run again on the embedded chdb store, which must give the same
answers. Cases tinct cannot run at all (native histograms, experimental
functions) are skipped, and every skip must be listed with its reason in
``promql_skips.txt``.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peer.promql_script import Outcome, run_script
from tests.peer_suites import require_peer_suite
from tinct.storage import ChdbSpanStore
from tinct.storage.memory_metrics import InMemoryMetricStore

SUITE = require_peer_suite("promql")
CORE = [
    "aggregators",
    "at_modifier",
    "collision",
    "functions",
    "histograms",
    "literals",
    "operators",
    "range_queries",
    "selectors",
    "staleness",
    "subquery",
    "trig_functions",
]
CHDB_FILES = ["selectors", "staleness"]
# Raise as the engine improves; the goal is 0.95.
MIN_PASS_RATE = 0.98
ALLOWED_REASONS = {"native histograms", "experimental functions"}
SKIPS_FILE = Path(__file__).with_name("promql_skips.txt")


def _memory_store() -> contextlib.AbstractContextManager[InMemoryMetricStore]:
    return contextlib.nullcontext(InMemoryMetricStore())


@functools.cache
def _memory_results(name: str) -> tuple[Outcome, ...]:
    text = (SUITE / f"{name}.test").read_text()
    return tuple(run_script(text, _memory_store))


def _listed_skips() -> dict[str, str]:
    listed: dict[str, str] = {}
    for line in SKIPS_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(\S+:\d+)\s+—\s+(.+)$", line)
        assert m, f"{SKIPS_FILE.name}: bad line {line!r} (want 'file:line — reason')"
        listed[m.group(1)] = m.group(2)
    return listed


def _summary(name: str, outcomes: tuple[Outcome, ...]) -> str:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("passed", "failed", "skipped")}
    return (
        f"{name}: passed {counts['passed']}, failed {counts['failed']}, skipped {counts['skipped']}"
    )


@pytest.mark.parametrize("name", CORE)
def test_core_file_skips_are_listed(name: str) -> None:
    outcomes = _memory_results(name)
    print(_summary(name, outcomes))
    for o in outcomes:
        if o.status == "failed":
            print(f"  FAILED {name}:{o.line} {o.expr}: {o.detail[:200]}")
    listed = _listed_skips()
    for o in outcomes:
        if o.status == "skipped":
            key = f"{name}.test:{o.line}"
            assert o.detail in ALLOWED_REASONS, f"{key}: skip reason {o.detail!r} not allowed"
            assert listed.get(key) == o.detail, f"{key} skipped ({o.detail}) but not listed"


def test_core_pass_rate() -> None:
    passed = failed = 0
    for name in CORE:
        outcomes = _memory_results(name)
        print(_summary(name, outcomes))
        passed += sum(o.status == "passed" for o in outcomes)
        failed += sum(o.status == "failed" for o in outcomes)
    rate = passed / (passed + failed)
    print(f"core pass rate {rate:.3f} ({passed}/{passed + failed})")
    assert rate >= MIN_PASS_RATE


@pytest.mark.parametrize("name", CHDB_FILES)
def test_chdb_store_gives_the_same_answers(name: str, tmp_path: Path) -> None:
    counter = iter(range(1_000_000))

    @contextlib.contextmanager
    def chdb_store() -> Iterator[ChdbSpanStore]:
        store = ChdbSpanStore(str(tmp_path / f"store{next(counter)}"))
        try:
            yield store
        finally:
            store.close()

    text = (SUITE / f"{name}.test").read_text()
    on_chdb = {o.line: o.status for o in run_script(text, chdb_store)}
    in_memory = {o.line: o.status for o in _memory_results(name)}
    assert on_chdb == in_memory
