"""YAML read with positions, so config errors can say where they are.

``yaml.safe_load`` returns plain values and forgets where each was written;
tinct's config checks (rule files, the static topology) report problems as
``<file>:<line>:<col>: ...`` the way ``promtool`` and compilers do. This module
composes a document into :class:`Node` trees (value plus 1-based line and
column) and holds the small helpers the checkers share.

Duplicate mapping keys are refused, as Go's yaml.v3 (and so Prometheus) does:
PyYAML would silently keep the last one. Each mapping node records its
duplicates in :attr:`Node.duplicates`; when a :class:`Collector` is given,
:func:`convert` also reports them as it goes.

Two ways to report: :class:`Collector` (one file, free-form messages, in the
order found: the rule files' ``promtool``-like messages) and :class:`Checker`
(several files, ``<file>:<line>:<col>: <field path>: <problem>`` sorted by
position, with typed accessors that report wrong types, unknown and duplicate
keys: config sections such as the static topology).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "Checker",
    "Collector",
    "Node",
    "compose",
    "describe",
    "convert",
    "join",
    "mapping",
    "scalar_text",
    "str_map",
]


@dataclass
class Node:
    """A YAML value with where it was written (for messages).

    Attributes:
        value: ``None``, a scalar (str, int, float, bool, date...), a
            ``list[Node]``, or for a mapping ``dict[str, tuple[Node, Node]]``
            (key name -> key node, value node; the first of duplicate keys).
        line: 1-based line of the value's start.
        col: 1-based column of the value's start.
        duplicates: for a mapping, each repeated key as (its key node, the
            key node of its first occurrence); the repeated value is dropped.
    """

    value: Any
    line: int
    col: int
    duplicates: list[tuple[Node, Node]] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.line}:{self.col}"


class Collector:
    """Every problem of one file, one ``<path>:<line>:<col>: <msg>`` line each."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[str] = []

    def add(self, node: Node | None, msg: str) -> None:
        where = f"{self.path}:{node.where}" if node is not None else self.path
        self.errors.append(f"{where}: {msg}")


def compose(text: str, errs: Collector | None = None) -> Node | None:
    """The single document in ``text`` as a :class:`Node` tree, None when empty.

    Raises:
        yaml.YAMLError: the text is not YAML, holds several documents, or a
            scalar can't be constructed (a ``MarkedYAMLError`` when the
            position is known).
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        return None if root is None else convert(root, errs, loader)
    finally:
        loader.dispose()


def convert(node: yaml.Node, errs: Collector | None, loader: yaml.SafeLoader) -> Node:
    """The composed YAML tree as :class:`Node` s, refusing duplicate keys like yaml.v3.

    Raises:
        yaml.YAMLError: a scalar can't be constructed (``!!int x``, a
            timestamp like ``2001-02-30``), or an alias refers to itself.
    """
    return _convert(node, errs, loader, set())


def _convert(
    node: yaml.Node, errs: Collector | None, loader: yaml.SafeLoader, active: set[int]
) -> Node:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        # An anchor may be aliased inside itself (`&a [*a]`): a cycle, not a tree.
        if id(node) in active:
            raise yaml.constructor.ConstructorError(
                None, None, "found a recursive alias", node.start_mark
            )
        active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return Node(
                    [_convert(item, errs, loader, active) for item in node.value], line, col
                )
            out: dict[str, tuple[Node, Node]] = {}
            duplicates: list[tuple[Node, Node]] = []
            for key_node, value_node in node.value:
                key = _convert(key_node, errs, loader, active)
                name = "" if key.value is None else str(key.value)
                if name in out:
                    duplicates.append((key, out[name][0]))
                    if errs is not None:
                        errs.add(
                            key, f"mapping key {name!r} already defined at line {out[name][0].line}"
                        )
                    continue
                out[name] = (key, _convert(value_node, errs, loader, active))
            return Node(out, line, col, duplicates)
        finally:
            active.discard(id(node))
    assert isinstance(node, yaml.ScalarNode)
    try:
        value = loader.construct_object(node)
    except yaml.YAMLError:
        raise
    except Exception as exc:  # noqa: BLE001 - PyYAML raises ValueError & co. on bad scalars
        raise yaml.constructor.ConstructorError(
            None, None, f"cannot read {node.value!r} as {node.tag}: {exc}", node.start_mark
        ) from exc
    return Node(value, line, col)


def mapping(node: Node, what: str, keys: Sequence[str], errs: Collector) -> dict[str, Node]:
    """The fields of a mapping node, reporting a non-mapping and unknown keys."""
    if node.value is None:
        return {}
    if not isinstance(node.value, dict):
        errs.add(node, f"{what} must be a mapping")
        return {}
    out: dict[str, Node] = {}
    for name, (key, value) in node.value.items():
        if name not in keys:
            errs.add(key, f"field {name} not found in {what}")
            continue
        out[name] = value
    return out


def str_map(node: Node | None, what: str, errs: Collector) -> dict[str, str]:
    """A mapping of scalars as strings (labels, annotations); None gives {}."""
    if node is None or node.value is None:
        return {}
    if not isinstance(node.value, dict):
        errs.add(node, f"{what} must be a mapping of strings")
        return {}
    out: dict[str, str] = {}
    for name, (_, value) in node.value.items():
        if isinstance(value.value, dict | list):
            errs.add(value, f"{what} {name!r}: value must be a string")
            continue
        out[name] = "" if value.value is None else scalar_text(value.value)
    return out


def scalar_text(value: Any) -> str:
    """A scalar as the text Go's yaml would give it (``true``, not ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Checker:
    """Problems of a set of files, as ``<file>:<line>:<col>: <field path>: <problem>``.

    Field paths read like ``topology.applications[0].services[1].name``. The
    accessors report a value of the wrong type and return an empty or None
    value, so a checker walks on and finds every problem in one pass.
    Not thread-safe: one checker per read.
    """

    def __init__(self) -> None:
        self.files: list[str] = []
        self.file = 0  # index in files of the file being read
        self._problems: list[tuple[int, int, int, str]] = []

    def error(self, node: Node | None, path: str, problem: str) -> None:
        """Report ``problem`` of the field at ``path`` (None: of the whole file)."""
        line, col = (node.line, node.col) if node is not None else (0, 0)
        where = self.files[self.file] + (f":{line}:{col}" if node is not None else "")
        self._problems.append((self.file, line, col, f"{where}: {join(path, problem, ': ')}"))

    def messages(self) -> list[str]:
        """Every problem, by file (in reading order), line and column."""
        return [p[3] for p in sorted(self._problems, key=lambda p: p[:3])]

    def open(self, name: str, text: str | None = None) -> Node | None:
        """Read file ``name`` (or its ``text``) as the current file; None if empty or bad."""
        self.file = len(self.files)
        self.files.append(name)
        try:
            return compose(Path(name).read_text(encoding="utf-8") if text is None else text)
        except OSError as exc:
            self.error(None, "", f"cannot read: {exc.strerror or exc}")
        except UnicodeDecodeError as exc:
            self.error(None, "", f"not UTF-8 text: {exc.reason} at byte {exc.start}")
        except yaml.MarkedYAMLError as exc:
            mark, context = exc.problem_mark or exc.context_mark, exc.context
            if context and mark and exc.context_mark and exc.context_mark.line != mark.line:
                context += f" at line {exc.context_mark.line + 1}"
            at = None if mark is None else Node(None, mark.line + 1, mark.column + 1)
            what = ", ".join(str(t) for t in (context, exc.problem) if t)
            self.error(at, "", f"not valid YAML: {what}")
        except yaml.YAMLError as exc:
            self.error(None, "", f"not valid YAML: {exc}")
        return None

    def fields(self, node: Node, path: str, keys: Sequence[str]) -> dict[str, Node] | None:
        """A mapping's value nodes by key, reporting unknown and duplicate keys.

        Returns {} for an empty value, None (reported) for a non-mapping.
        """
        if node.value is None:
            return {}
        if not isinstance(node.value, dict):
            self.error(node, path, f"must be a mapping, not {describe(node)}")
            return None
        for dup, first in node.duplicates:
            self.error(
                dup, join(path, str(dup.value)), f"duplicate key (first at line {first.line})"
            )
        out: dict[str, Node] = {}
        for name, (key, value) in node.value.items():
            if isinstance(key.value, dict | list):  # YAML allows `? [a, b]: c`
                self.error(key, path, f"keys must be strings, not {describe(key)}")
            elif name in keys:
                out[name] = value
            else:
                self.error(key, join(path, name), f"unknown key (known: {', '.join(keys)})")
        return out

    def sequence(self, node: Node | None, path: str) -> list[Node]:
        """A list's item nodes; [] when absent, empty or (reported) not a list."""
        if node is None or node.value is None:
            return []
        if not isinstance(node.value, list):
            self.error(node, path, f"must be a list, not {describe(node)}")
            return []
        return list(node.value)

    def text(self, node: Node, path: str) -> str | None:
        """A non-blank string, or None (reported)."""
        if not isinstance(node.value, str):
            # `12:30` is the number 750 to YAML 1.1 (base 60): quoting fixes it.
            hint = " (quote it)" if isinstance(node.value, int | float) else ""
            self.error(node, path, f"must be a string, not {describe(node)}{hint}")
            return None
        if not node.value.strip():
            self.error(node, path, "must not be empty")
            return None
        return node.value

    def texts(self, node: Node | None, path: str) -> list[tuple[Node, str, str]]:
        """(node, field path, string) of each valid string of a list."""
        out = []
        for i, item in enumerate(self.sequence(node, path)):
            if (value := self.text(item, f"{path}[{i}]")) is not None:
                out.append((item, f"{path}[{i}]", value))
        return out

    def flag(self, node: Node | None, path: str) -> bool:
        """A boolean; False when absent, empty or (reported) not true/false."""
        if node is None or node.value is None:
            return False
        if not isinstance(node.value, bool):
            self.error(node, path, f"must be true or false, not {describe(node)}")
            return False
        return node.value


def join(path: str, key: str, sep: str = ".") -> str:
    """``path.key``, or ``key`` alone at the top (``path`` empty)."""
    return f"{path}{sep}{key}" if path else key


def describe(node: Node) -> str:
    """What a node holds, for "must be X, not Y" messages."""
    value = node.value
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, dict | list | str):
        return {dict: "a mapping", list: "a list", str: "a string"}[type(value)]
    return type(value).__name__  # a date, bytes...
