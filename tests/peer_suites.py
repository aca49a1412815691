"""Where the peer projects' test data lives.

The suites sit beside the repository as ``../shared/peer-suites`` (see that
folder's README); ``TINCT_PEER_SUITES`` points elsewhere. A run without them
skips the modules that need them, saying where it looked, rather than
failing the rest of the suite.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def peer_suites_dir() -> Path:
    return Path(os.environ.get("TINCT_PEER_SUITES") or REPO.parent / "shared" / "peer-suites")


def require_peer_suite(name: str) -> Path:
    """The folder of one peer suite; skips the calling test module when it is absent."""
    path = peer_suites_dir() / name
    if not path.is_dir():
        pytest.skip(
            f"peer suite {name!r} not found at {path} (set TINCT_PEER_SUITES)",
            allow_module_level=True,
        )
    return path
