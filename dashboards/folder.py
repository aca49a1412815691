"""The dashboards folder: Grafana dashboard files, re-read when they change.

Like Grafana's file provisioning (``pkg/services/provisioning/dashboards``,
``foldersFromFilesStructure``), a folder of ``*.json`` (and ``*.yaml`` /
``*.yml``, read as the same model) is the dashboards, its subfolders (one
level) are Grafana folders, and editing a file is editing the dashboard.
:class:`DashboardFolder` re-scans at most every ``min_interval_s`` when asked
for dashboards, compares each file's modification time and size with the
last scan, and re-reads only the files that changed. A file that can't be
read is skipped and its error kept (and logged once per change of the file)
while the others load; when two files have the same uid, the first by path
wins and the second is an error naming both. Built-in dashboards (generated
by tinct) are merged in; a file with a built-in's uid replaces it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tinct.dashboards.model import Dashboard, DashboardError, parse_dashboard

__all__ = ["DashboardFolder", "MAX_FILE_BYTES", "load_dashboard_file"]

logger = logging.getLogger(__name__)

# Grafana's largest exported dashboards are a few MB; beyond this is a mistake.
MAX_FILE_BYTES = 16 * 1024 * 1024
_SUFFIXES = (".json", ".yaml", ".yml")

# (mtime_ns, size) of a file at the last scan.
_Stamp = tuple[int, int]


def load_dashboard_file(path: Path, name: str | None = None) -> Dashboard:
    """Read and parse one dashboard file (JSON, or YAML by its suffix).

    Args:
        path: the file.
        name: what errors call it (the path relative to the folder).

    Raises:
        DashboardError: the file can't be read, is not JSON/YAML, or is not a
            valid dashboard; the message names the file.
    """
    name = name or path.name
    try:
        return _load(path, name)
    except RecursionError as exc:  # JSON/YAML nested thousands deep
        raise DashboardError(f"{name}: nested too deeply") from exc


def _load(path: Path, name: str) -> Dashboard:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DashboardError(
                f"{name}: file is {size} bytes, more than the {MAX_FILE_BYTES} bytes allowed"
            )
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DashboardError(f"{name}: can't read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DashboardError(f"{name}: not UTF-8 text: {exc.reason}") from exc
    doc: Any
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DashboardError(
                f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from exc
    else:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise DashboardError(f"{name}: invalid YAML{where}: {problem}") from exc
    return parse_dashboard(doc, name)


@dataclasses.dataclass
class _Entry:
    stamp: _Stamp
    dashboard: Dashboard | None
    error: str


class DashboardFolder:
    """The dashboards of a folder and the built-in ones, by uid. Thread-safe.

    Reads happen in the calling thread, at most every ``min_interval_s``;
    between scans the calls are dictionary look-ups under a lock.

    Args:
        path: the folder (None, or a folder that does not exist: built-ins only).
        builtin: returns the built-in dashboards; called on each scan.
        min_interval_s: the least time between two scans of the folder.
        clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        builtin: Callable[[], list[Dashboard]] = list,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._builtin = builtin
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._scanned_at: float | None = None
        self._entries: dict[str, _Entry] = {}
        self._dashboards: dict[str, Dashboard] = {}
        self._errors: dict[str, str] = {}

    def dashboards(self) -> dict[str, Dashboard]:
        """Every dashboard by uid: the files', and the built-in ones no file replaces."""
        with self._lock:
            self._refresh()
            return dict(self._dashboards)

    def get(self, uid: str) -> Dashboard | None:
        """The dashboard with this uid, None when there is none."""
        with self._lock:
            self._refresh()
            return self._dashboards.get(uid)

    def errors(self) -> dict[str, str]:
        """The files that were skipped, by name relative to the folder, and why."""
        with self._lock:
            self._refresh()
            return dict(self._errors)

    def _refresh(self) -> None:
        now = self._clock()
        if self._scanned_at is not None and now - self._scanned_at < self._min_interval_s:
            return
        self._scanned_at = now
        self._scan_files()
        self._merge()

    def _files(self) -> dict[str, Path]:
        if self.path is None or not self.path.is_dir():
            return {}
        found: dict[str, Path] = {}
        try:
            children = sorted(self.path.iterdir())
            for child in children:
                if child.name.startswith("."):
                    continue
                if child.is_dir():
                    for inner in sorted(child.iterdir()):
                        if _is_dashboard_file(inner):
                            found[f"{child.name}/{inner.name}"] = inner
                elif _is_dashboard_file(child):
                    found[child.name] = child
        except OSError:
            logger.exception("can't list the dashboards folder %s", self.path)
        return found

    def _scan_files(self) -> None:
        entries: dict[str, _Entry] = {}
        for name, path in self._files().items():
            try:
                st = path.stat()
            except OSError:
                continue  # deleted between listing and stat
            stamp = (st.st_mtime_ns, st.st_size)
            old = self._entries.get(name)
            if old is not None and old.stamp == stamp:
                entries[name] = old
                continue
            try:
                dashboard = load_dashboard_file(path, name)
                folder = name.split("/", 1)[0] if "/" in name else ""
                entry = _Entry(
                    stamp, dataclasses.replace(dashboard, folder=folder, source=name), ""
                )
            except DashboardError as exc:
                entry = _Entry(stamp, None, str(exc))
                logger.warning("dashboard file skipped: %s", exc)
            except Exception as exc:  # never let one file stop the others
                logger.exception("dashboard file %s skipped", name)
                entry = _Entry(stamp, None, f"{name}: {type(exc).__name__}: {exc}")
            entries[name] = entry
        self._entries = entries

    def _merge(self) -> None:
        dashboards: dict[str, Dashboard] = {}
        try:
            for dashboard in self._builtin():
                dashboards[dashboard.uid] = dashboard
        except Exception:
            logger.exception("built-in dashboards failed; serving the folder's only")
        errors: dict[str, str] = {}
        owner: dict[str, str] = {}
        for name in sorted(self._entries):
            entry = self._entries[name]
            if entry.dashboard is None:
                errors[name] = entry.error
                continue
            uid = entry.dashboard.uid
            if uid in owner:
                errors[name] = (
                    f"{name}: uid {uid!r} is already used by {owner[uid]}; "
                    "give one of them another uid"
                )
                if self._errors.get(name) != errors[name]:  # parse errors: logged when read
                    logger.warning("dashboard file skipped: %s", errors[name])
                continue
            owner[uid] = name
            dashboards[uid] = entry.dashboard
        self._dashboards = dashboards
        self._errors = errors


def _is_dashboard_file(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in _SUFFIXES and path.is_file()
