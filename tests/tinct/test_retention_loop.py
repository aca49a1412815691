"""The server's periodic retention: runs on its schedule and survives failures."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tinct.server import retention_loop


class _Store:
    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.calls = 0

    def apply_retention(self) -> list[tuple[str, str]]:
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else []
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[no-any-return]


def test_retention_runs_repeatedly_and_survives_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _Store([RuntimeError("server down"), [("tinct_spans", "20170125")]])

    async def run() -> None:
        task = asyncio.create_task(retention_loop(store, 0.01))  # type: ignore[arg-type]
        while store.calls < 3:
            await asyncio.sleep(0.005)
        task.cancel()

    with caplog.at_level(logging.INFO, logger="tinct"):
        asyncio.run(run())
    assert store.calls >= 3
    assert "applying retention failed" in caplog.text
    assert "retention dropped partition 20170125 of tinct_spans" in caplog.text
