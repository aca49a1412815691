"""The dashboards folder: files added, changed, removed and broken, as a user edits them."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from tinct.dashboards import folder as folder_module
from tinct.dashboards.folder import DashboardFolder, load_dashboard_file
from tinct.dashboards.model import Dashboard, DashboardError, parse_dashboard


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 5.0) -> None:
        self.now += seconds


def _doc(uid: str, title: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title or f"Dashboard {uid}",
        "panels": [{"id": 1, "type": "stat", "targets": [{"expr": "up"}]}],
        **extra,
    }


_MTIME = [1_700_000_000]


def _write(path: Path, content: Any) -> Path:
    """Write a dashboard file with a fresh modification time (no same-second ambiguity)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    elif path.suffix == ".json":
        path.write_text(json.dumps(content))
    else:
        path.write_text(yaml.safe_dump(content))
    _MTIME[0] += 10
    os.utime(path, (_MTIME[0], _MTIME[0]))
    return path


def _folder(path: Path, clock: FakeClock, **kwargs: Any) -> DashboardFolder:
    return DashboardFolder(path, clock=clock, min_interval_s=1.0, **kwargs)


def test_files_are_added_modified_and_deleted(tmp_path: Path) -> None:
    clock = FakeClock()
    _write(tmp_path / "a.json", _doc("a"))
    folder = _folder(tmp_path, clock)
    assert list(folder.dashboards()) == ["a"]
    assert folder.get("a") is not None and folder.get("a").title == "Dashboard a"  # type: ignore[union-attr]

    _write(tmp_path / "b.yaml", _doc("b"))
    _write(tmp_path / "a.json", _doc("a", "Renamed"))
    # Within min_interval_s nothing is re-read.
    assert list(folder.dashboards()) == ["a"]
    clock.advance()
    assert sorted(folder.dashboards()) == ["a", "b"]
    assert folder.get("a").title == "Renamed"  # type: ignore[union-attr]
    assert folder.get("b").source == "b.yaml"  # type: ignore[union-attr]

    (tmp_path / "a.json").unlink()
    clock.advance()
    assert list(folder.dashboards()) == ["b"]
    assert folder.get("a") is None
    assert folder.errors() == {}


def test_only_changed_files_are_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    _write(tmp_path / "a.json", _doc("a"))
    _write(tmp_path / "b.json", _doc("b"))
    reads: list[str] = []
    real = folder_module.load_dashboard_file

    def counting(path: Path, name: str | None = None) -> Dashboard:
        reads.append(path.name)
        return real(path, name)

    monkeypatch.setattr(folder_module, "load_dashboard_file", counting)
    folder = _folder(tmp_path, clock)
    folder.dashboards()
    assert sorted(reads) == ["a.json", "b.json"]
    _write(tmp_path / "b.json", _doc("b", "B2"))
    clock.advance()
    folder.dashboards()
    assert sorted(reads) == ["a.json", "b.json", "b.json"]
    clock.advance()
    folder.dashboards()
    assert len(reads) == 3


def test_a_bad_file_is_skipped_and_its_error_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    _write(tmp_path / "good.json", _doc("good"))
    _write(tmp_path / "broken.json", '{"title": "x", "panels": [')
    bad_type = _doc("typed")
    bad_type["panels"][0]["targets"][0]["expr"] = 42
    _write(tmp_path / "typed.yml", bad_type)
    folder = _folder(tmp_path, clock)
    with caplog.at_level(logging.WARNING, logger="tinct.dashboards.folder"):
        assert list(folder.dashboards()) == ["good"]
        errors = folder.errors()
        assert errors["broken.json"].startswith("broken.json: invalid JSON at line 1 column 27")
        assert errors["typed.yml"] == (
            "typed.yml: panels[0].targets[0].expr: must be a string, got a number"
        )
        for _ in range(3):  # unchanged files are not logged again
            clock.advance()
            folder.dashboards()
    assert sum("broken.json" in r.getMessage() for r in caplog.records) == 1

    _write(tmp_path / "broken.json", _doc("fixed"))
    clock.advance()
    assert sorted(folder.dashboards()) == ["fixed", "good"]
    assert list(folder.errors()) == ["typed.yml"]


def test_invalid_yaml_and_too_large_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "bad.yaml", "title: [unclosed\npanels: []\n")
    with pytest.raises(DashboardError, match=r"^bad\.yaml: invalid YAML at line \d+ column \d+"):
        load_dashboard_file(tmp_path / "bad.yaml")
    monkeypatch.setattr(folder_module, "MAX_FILE_BYTES", 10)
    _write(tmp_path / "big.json", _doc("big"))
    with pytest.raises(DashboardError, match=r"more than the 10 bytes allowed"):
        load_dashboard_file(tmp_path / "big.json")


def test_duplicate_uid_first_by_path_wins(tmp_path: Path) -> None:
    clock = FakeClock()
    _write(tmp_path / "b.json", _doc("same", "From b"))
    _write(tmp_path / "a.json", _doc("same", "From a"))
    folder = _folder(tmp_path, clock)
    assert folder.get("same").title == "From a"  # type: ignore[union-attr]
    assert folder.errors() == {
        "b.json": "b.json: uid 'same' is already used by a.json; give one of them another uid"
    }
    (tmp_path / "a.json").unlink()
    clock.advance()
    assert folder.get("same").title == "From b"  # type: ignore[union-attr]
    assert folder.errors() == {}


def test_subfolders_are_grafana_folders_one_level_deep(tmp_path: Path) -> None:
    _write(tmp_path / "top.json", _doc("top"))
    _write(tmp_path / "Team A" / "svc.json", _doc("svc"))
    _write(tmp_path / "Team A" / "deeper" / "ignored.json", _doc("deep"))
    _write(tmp_path / ".hidden" / "h.json", _doc("hidden"))
    _write(tmp_path / ".dot.json", _doc("dot"))
    _write(tmp_path / "notes.txt", "not a dashboard")
    folder = _folder(tmp_path, FakeClock())
    dashboards = folder.dashboards()
    assert sorted(dashboards) == ["svc", "top"]
    assert (dashboards["svc"].folder, dashboards["svc"].source) == ("Team A", "Team A/svc.json")
    assert dashboards["top"].folder == ""


def test_builtin_dashboards_and_a_file_replacing_one(tmp_path: Path) -> None:
    clock = FakeClock()
    builtins = [parse_dashboard(_doc("tinct-hosts", "Hosts")), parse_dashboard(_doc("tinct-x"))]
    folder = _folder(tmp_path, clock, builtin=lambda: builtins)
    assert sorted(folder.dashboards()) == ["tinct-hosts", "tinct-x"]
    _write(tmp_path / "hosts.json", _doc("tinct-hosts", "My hosts"))
    clock.advance()
    assert folder.get("tinct-hosts").title == "My hosts"  # type: ignore[union-attr]
    assert folder.get("tinct-x") is not None


def test_no_folder_serves_the_builtins(tmp_path: Path) -> None:
    builtins = [parse_dashboard(_doc("b"))]
    for path in (None, tmp_path / "missing"):
        folder = DashboardFolder(path, builtin=lambda: builtins)
        assert list(folder.dashboards()) == ["b"]
        assert folder.errors() == {}


def test_a_failing_builtin_does_not_hide_the_files(tmp_path: Path) -> None:
    def broken() -> list[Dashboard]:
        raise RuntimeError("catalog bug")

    _write(tmp_path / "a.json", _doc("a"))
    assert list(_folder(tmp_path, FakeClock(), builtin=broken).dashboards()) == ["a"]


def test_concurrent_readers_see_whole_scans(tmp_path: Path) -> None:
    for i in range(20):
        _write(tmp_path / f"d{i:02}.json", _doc(f"d{i:02}"))
    ticks = iter(range(10**9))
    folder = DashboardFolder(tmp_path, min_interval_s=0.0, clock=lambda: float(next(ticks)))
    failures: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(20):
                assert len(folder.dashboards()) == 20
                assert folder.get("d07") is not None
                assert folder.errors() == {}
        except BaseException as exc:  # reported below, from the main thread
            failures.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
