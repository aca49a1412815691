"""What pages and callbacks read through: the query layer and the dashboards."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinct.dashboards.query import TinctClient

__all__ = ["Context"]


@dataclass
class Context:
    """One app's query layer, dashboard folder and clock.

    Attributes:
        client: tinct's HTTP APIs.
        folder: the dashboards (files and built-in), by uid
            (``tinct.dashboards.folder.DashboardFolder``).
        clock: Unix seconds ("now" of relative time ranges).
        workers: the thread pool panels of one page are queried on.
    """

    client: TinctClient
    folder: Any
    clock: Callable[[], float] = time.time
    workers: Any = field(default=None)
