"""Reading a dashboard document field by field, with the field's path in every error.

Grafana's dashboard JSON is written by many hands (Grafana's exporter, jsonnet
libraries, people), so the model is lenient where Grafana is: unknown fields
are ignored and ``null`` means "not set". A field tinct *uses* must have the
right type, though, and when it does not the error says which file, which
field (``panels[3].targets[0].expr``) and what was expected, so the author can
fix it without reading tinct's source.

:class:`DashboardError` sits in tinct's error tree (``tinct/errors.py``) under
``ConfigError``, as a dashboard file is configuration; it is a ``ValueError``
too, as the model takes plain values::

    TinctError
    └── ConfigError
        └── DashboardError   (also a ValueError)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tinct.errors import ConfigError

__all__ = ["DashboardError", "Node"]


class DashboardError(ConfigError, ValueError):
    """A dashboard document can't be read; the message names the file and the field path."""


def _kind(value: Any) -> str:
    # Named as JSON names them: the author wrote JSON or YAML, not Python.
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


class Node:
    """One object of the document and where it is (``panels[3].targets[0]``).

    Each getter returns the field converted, its default when the field is
    absent or ``null``, or raises :class:`DashboardError` naming the path.
    """

    __slots__ = ("data", "path", "source")

    def __init__(self, data: Mapping[str, Any], path: str, source: str) -> None:
        self.data = data
        self.path = path
        self.source = source

    def where(self, key: str | int | None = None) -> str:
        """The path of ``key`` in this object (the object's own with None)."""
        if key is None:
            return self.path or "(document)"
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | int | None, message: str) -> DashboardError:
        """An error about field ``key`` of this object."""
        return DashboardError(f"{self.source}: {self.where(key)}: {message}")

    def get(self, key: str) -> Any:
        """The raw value of ``key`` (None when absent)."""
        return self.data.get(key)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present and not ``null``."""
        return self.data.get(key) is not None

    def _wrong(self, key: str, expected: str) -> DashboardError:
        return self.error(key, f"must be {expected}, got {_kind(self.data[key])}")

    def string(self, key: str, default: str = "") -> str:
        """A string field."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._wrong(key, "a string")
        return value

    def boolean(self, key: str, default: bool = False) -> bool:
        """A boolean field."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false")
        return value

    def integer(self, key: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        """An integer field, within ``lo..hi`` when given (``2.0`` counts as 2)."""
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(key, "an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise self.error(key, f"must be an integer, got {value!r}")
            value = int(value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            if hi is None:
                raise self.error(key, f"must be at least {lo}, got {value}")
            if lo is None:
                raise self.error(key, f"must be at most {hi}, got {value}")
            raise self.error(key, f"must be between {lo} and {hi}, got {value}")
        return value

    def opt_int(self, key: str, lo: int | None = None) -> int | None:
        """An integer field, None when absent."""
        if self.data.get(key) is None:
            return None
        return self.integer(key, 0, lo=lo)

    def opt_float(self, key: str) -> float | None:
        """A number field, None when absent (Grafana writes -Infinity as null)."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(key, "a number")
        value = float(value)
        return None if math.isnan(value) else value

    def node(self, key: str) -> Node | None:
        """An object field as a Node, None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self._wrong(key, "an object")
        return Node(value, self.where(key), self.source)

    def mapping(self, key: str) -> dict[str, Any]:
        """An object field as a plain dict (empty when absent)."""
        node = self.node(key)
        return {} if node is None else dict(node.data)

    def array(self, key: str) -> list[Any]:
        """A list field (empty when absent)."""
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise self._wrong(key, "a list")
        return list(value)

    def nodes(self, key: str) -> list[Node]:
        """A list of objects, each as a Node (``panels[3]``)."""
        out = []
        base = self.where(key)
        for i, item in enumerate(self.array(key)):
            if not isinstance(item, Mapping):
                raise DashboardError(
                    f"{self.source}: {base}[{i}]: must be an object, got {_kind(item)}"
                )
            out.append(Node(item, f"{base}[{i}]", self.source))
        return out

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of strings (``tags``)."""
        out = []
        base = self.where(key)
        for i, item in enumerate(self.array(key)):
            if not isinstance(item, str):
                raise DashboardError(
                    f"{self.source}: {base}[{i}]: must be a string, got {_kind(item)}"
                )
            out.append(item)
        return tuple(out)

    def choice(self, key: str, default: str, allowed: Sequence[str]) -> str:
        """A string field that must be one of ``allowed`` ("" counts as absent)."""
        value = self.string(key, default) or default
        if value not in allowed:
            raise self.error(key, f"must be one of {', '.join(allowed)}, got {value!r}")
        return value
