"""Parameterized SQL written once, rendered for chdb and for clickhouse-driver.

tinct's queries run on two engines whose parameter mechanisms differ:

* chdb (and ClickHouse's HTTP/native server-side parameters) takes typed
  placeholders ``{name:Type}`` and a dict of values in ClickHouse's *escaped*
  text form (TSV escaping: ``\\t`` for a tab, ``\\\\`` for a backslash);
* clickhouse-driver substitutes ``%(name)s`` on the client, quoting and
  escaping each Python value itself (so a literal ``%`` must be doubled).

Queries are therefore written with ``{name:Type}`` placeholders only, through
:class:`SqlBuilder`, and :class:`Sql` renders them for either engine. Values
never enter the text here: they always go through the engine's own parameter
mechanism, so no user text is ever spliced into SQL (DESIGN.md, "SQL is
parameterized"). Identifiers cannot be parameters in ClickHouse; the few we
use (database and table names) are checked by :func:`ident`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

__all__ = ["Sql", "SqlBuilder", "SqlRunner", "ParamValue", "ident"]

ParamValue = int | str | list[int]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9_(), ]+)\}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT_TYPES = re.compile(r"U?Int(8|16|32|64)\Z")

# ClickHouse "Escaped" format, the text form chdb parses query parameters
# from (docs: "Formats > TabSeparated > Data Formatting"). Backslash first.
_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "\t": "\\t",
        "\n": "\\n",
        "\r": "\\r",
        "\b": "\\b",
        "\f": "\\f",
        "\0": "\\0",
    }
)


def ident(name: str) -> str:
    """``name`` back-quoted, after checking it is a plain identifier.

    Raises:
        ValueError: ``name`` is not ``[A-Za-z_][A-Za-z0-9_]*``.
    """
    if not _IDENT.match(name):
        raise ValueError(f"not a valid ClickHouse identifier: {name!r} (use [A-Za-z0-9_])")
    return f"`{name}`"


def _check_value(name: str, type_: str, value: ParamValue) -> None:
    # bool is an int subclass; a True sneaking into a UInt64 is a bug upstream.
    if type_.startswith("Array(") and _INT_TYPES.match(type_[6:-1]):
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise TypeError(f"parameter {name} is {type_} but got {type(value).__name__}")
    elif _INT_TYPES.match(type_):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"parameter {name} is {type_} but got {type(value).__name__}")
    elif type_ in ("String",) or type_.startswith("FixedString("):
        if not isinstance(value, str):
            raise TypeError(f"parameter {name} is {type_} but got {type(value).__name__}")
    else:
        raise TypeError(f"parameter {name}: type {type_} is not supported by tinct.storage.sql")


@dataclass(frozen=True)
class Sql:
    """One statement with typed ``{name:Type}`` placeholders and their values.

    Supported placeholder types: ``String``, ``FixedString(N)`` (text),
    ``[U]Int8..64`` (Python ``int``) and ``Array([U]Int8..64)`` (a list of
    ``int``). Instances are immutable and thread-safe.
    """

    text: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen = set()
        for match in _PLACEHOLDER.finditer(self.text):
            name, type_ = match.group(1), match.group(2)
            if name not in self.params:
                raise KeyError(f"placeholder {{{name}:{type_}}} has no value")
            _check_value(name, type_, self.params[name])
            seen.add(name)
        unused = set(self.params) - seen
        if unused:
            raise KeyError(f"parameters without a placeholder: {sorted(unused)}")

    def for_chdb(self) -> tuple[str, dict[str, str]]:
        """Text unchanged, values in ClickHouse's escaped text form."""
        rendered = {name: _chdb_text(value) for name, value in self.params.items()}
        return self.text, rendered

    def for_driver(self) -> tuple[str, dict[str, ParamValue] | None]:
        """Text with ``%(name)s`` placeholders for clickhouse-driver's substitution.

        clickhouse-driver only runs ``text % params`` when params are given, so
        ``%`` is doubled exactly in that case.
        """
        if not self.params:
            return self.text, None
        text = _PLACEHOLDER.sub(lambda m: f"%({m.group(1)})s", self.text.replace("%", "%%"))
        return text, dict(self.params)


def _chdb_text(value: ParamValue) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(int(v)) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    return value.translate(_ESCAPES)


class SqlBuilder:
    """Collects parameters while a query is assembled.

    Example::

        b = SqlBuilder()
        where = f"service = {b.param(query.service, 'String')}"
        sql = b.build(f"SELECT ... WHERE {where}")

    Not thread-safe; build one per query.
    """

    def __init__(self) -> None:
        self._params: dict[str, ParamValue] = {}

    def param(self, value: ParamValue, type_: str) -> str:
        """Register ``value`` and return its ``{pN:Type}`` placeholder."""
        name = f"p{len(self._params)}"
        _check_value(name, type_, value)
        self._params[name] = value
        return f"{{{name}:{type_}}}"

    def build(self, text: str) -> Sql:
        """The finished statement."""
        return Sql(text, dict(self._params))


class SqlRunner(Protocol):
    """Runs :class:`Sql` on one backend. Implementations are thread-safe."""

    def execute(self, sql: Sql) -> None:
        """Run a statement without a result. Raises StorageError."""

    def select(self, sql: Sql) -> pa.Table:
        """Run a query; String columns come back as Arrow ``binary``. Raises StorageError."""
