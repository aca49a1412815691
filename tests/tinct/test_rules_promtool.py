"""``tinct rules check|test`` agree with Prometheus's own ``promtool`` (the oracle).

Every rule file in ``rules_testdata`` (and ``rules_testdata/bad``) gets the
same verdict from ``promtool check rules`` and ``tinct rules check``; every
``*_test.yml`` the same from ``promtool test rules`` and ``tinct rules test``,
and for the failing ones (``fail_*``, designed to fail) the same failure
text. The cases cover ``for`` (pending vs firing), ``keep_firing_for``,
recording rules feeding alerts, ``group_eval_order``, templated labels and
annotations (humanize*, printf, query/first/value/label, range, with,
reReplaceAll, title, toUpper, $externalLabels, $externalURL, and Go's error
text for a failing template), rule labels overriding the expression's.

Debian's promtool is 2.42: a test group without ``interval`` loads its
series at one instant there (later promtools default it to the evaluation
interval, as tinct does), so every test here sets ``interval``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinct import rules_cli
from tinct.alerting.unittest import run_test_file

pytestmark = pytest.mark.server

DATA = Path(__file__).parent / "rules_testdata"
PROMTOOL = "/usr/bin/promtool"
RULE_FILES = sorted(
    p for p in [*DATA.glob("*.yml"), *DATA.glob("bad/*.yml")] if not p.name.endswith("_test.yml")
)
TEST_FILES = sorted(DATA.glob("*_test.yml"))


@pytest.fixture(scope="module", autouse=True)
def _promtool() -> None:
    if not shutil.which(PROMTOOL):
        pytest.skip("promtool is not installed (apt-get install prometheus)")


def _promtool_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], cwd=DATA, capture_output=True, text=True, timeout=60, check=False
    )


def _failures(stderr: str) -> str:
    """The failure text, without blank lines (their count differs by version)."""
    return "\n".join(line for line in stderr.splitlines() if line.strip())


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(DATA)))
def test_check_verdict_matches_promtool(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rel = str(path.relative_to(DATA))
    want = _promtool_run("check", "rules", rel).returncode
    assert rules_cli.check_rules([str(path)]) == want
    assert (path.parent.name == "bad") == (want == 1)
    capsys.readouterr()


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_unit_test_verdict_and_failures_match_promtool(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    oracle = _promtool_run("test", "rules", path.name)
    assert (oracle.returncode == 1) == path.name.startswith("fail_"), oracle.stderr
    monkeypatch.chdir(DATA)
    assert rules_cli.test_rules([path.name]) == oracle.returncode
    out = capsys.readouterr()
    assert out.out.startswith(f"Unit Testing:  {path.name}\n")
    assert _failures(out.err) == _failures(oracle.stderr)
    assert bool(run_test_file(path)) == bool(oracle.returncode)


def test_cli_subprocess_runs_rules_test_and_check() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    files = [p.name for p in TEST_FILES]
    proc = subprocess.run(
        [sys.executable, "-m", "tinct", "rules", "test", *files],
        cwd=DATA,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    oracle = _promtool_run("test", "rules", *files)
    assert proc.returncode == oracle.returncode == 1
    assert _failures(proc.stderr) == _failures(oracle.stderr)
    assert proc.stdout.count("  SUCCESS") == oracle.stdout.count("  SUCCESS")
    check = subprocess.run(
        [sys.executable, "-m", "tinct", "rules", "check", "alerts.yml", "keep_firing.yml"],
        cwd=DATA,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "  SUCCESS: 5 rules found" in check.stdout
