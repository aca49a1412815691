"""Promoted columns: well-known span attributes copied into their own columns.

The store filters and groups by these (RED metrics per route, the service
graph, dyed requests) without digging into the attribute arrays, which still
hold every attribute as sent. Keys follow the OpenTelemetry semantic
conventions, with fallbacks for the names they replaced; ``tinct.dye`` and
``tinct.sampling.probability`` are tinct's own (see the design notes).
"""

from __future__ import annotations

from collections.abc import Callable
from math import isfinite
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["PROMOTED", "promoted_columns"]

# Promoted columns and the attribute keys they copy, preferred key first: the
# current HTTP/network names before their pre-1.21 predecessors; db.system
# before db.system.name, its 1.30 successor (either may be sent for years).
PROMOTED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("http_route", ("http.route",)),
    ("http_method", ("http.request.method", "http.method")),
    ("http_status_code", ("http.response.status_code", "http.status_code")),
    ("peer_service", ("peer.service",)),
    ("server_address", ("server.address", "net.peer.name")),
    ("db_system", ("db.system", "db.system.name")),
    ("enduser_id", ("enduser.id",)),
    ("dye", ("tinct.dye",)),
    ("sampling_probability", ("tinct.sampling.probability",)),
)
_PROMOTED_SET = pa.array([key for _, keys in PROMOTED for key in keys], pa.string())


def _arange(n: int) -> pa.Array:
    """0..n-1 as int64, built in Arrow (converting range(n) from Python is slower)."""
    return pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), 1)


def _first_values(
    slots: pa.Array, parents: pa.Array, values: pa.Array, present: list[int], n: int
) -> dict[int, pa.Array]:
    """For each slot in ``present``: per span, the value of its first attribute in that slot.

    ``slots``, ``parents`` and ``values`` are per flattened attribute (promoted
    slot or null, span index, text). All slots are looked up at once: each
    promoted attribute gets the code ``slot * n + span`` and every wanted
    (slot, span) pair is found with one ``index_in``, which returns the first
    occurrence, so a key repeated in a span keeps its first value. (Per-slot
    masks and lookups cost ~5 Arrow calls per present key and request.)
    """
    promoted = pc.is_valid(slots)
    code = pc.add(
        pc.multiply(slots.filter(promoted).cast(pa.int64()), pa.scalar(n, pa.int64())),
        parents.filter(promoted).cast(pa.int64()),
    )
    rows = _arange(n)
    wanted = pa.concat_arrays([pc.add(rows, pa.scalar(s * n, pa.int64())) for s in present])
    found = values.filter(promoted).take(pc.index_in(wanted, value_set=code))
    return {s: found.slice(i * n, n) for i, s in enumerate(present)}


def _status_code(text: str) -> int:
    return int(text) if text.isdigit() and len(text) <= 5 and int(text) < 65536 else 0


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return 0.0
    return value if isfinite(value) and 0.0 <= value <= 1.0 else 0.0


def promoted_columns(
    keys: pa.ListArray, values: pa.ListArray, unique_keys: pa.Array, indices: pa.Array
) -> dict[str, pa.Array]:
    """The promoted columns of a batch, from its attr_keys / attr_values lists.

    ``unique_keys`` and ``indices`` are the attribute keys dictionary-encoded
    (the flattened keys are ``unique_keys.take(indices)``), which lets the
    absent keys, most of them, be skipped at the cost of one small lookup.

    Every span gets, per promoted key that occurs, its first match's value
    (:func:`_first_values`); the preferred key wins over its fallback through
    ``coalesce``. The status code is an integer in uint16 range (``0``
    otherwise, including absent) and the sampling probability a float in
    [0, 1] (``0`` otherwise); both accept the value's text form, so a Zipkin
    string tag ``"200"`` counts.
    """
    n = len(keys)
    unique_slots = pc.index_in(unique_keys, value_set=_PROMOTED_SET)
    by_slot: dict[int, pa.Array] = {}
    if unique_slots.null_count < len(unique_slots):
        present = sorted(set(unique_slots.drop_null().to_pylist()))
        slots = unique_slots.take(indices)
        by_slot = _first_values(slots, pc.list_parent_indices(keys), values.flatten(), present, n)
    out: dict[str, pa.Array] = {}
    slot = 0
    for column, candidates in PROMOTED:
        found = [by_slot[s] for s in range(slot, slot + len(candidates)) if s in by_slot]
        slot += len(candidates)
        if column == "http_status_code":
            out[column] = _convert(found, _status_code, pa.uint16(), 0, n)
        elif column == "sampling_probability":
            out[column] = _convert(found, _probability, pa.float64(), 0.0, n)
        elif found:
            out[column] = pc.coalesce(*found, pa.scalar(""))
        else:
            out[column] = pa.repeat("", n)
    return out


def _convert(
    found: list[pa.Array], fn: Callable[[str], Any], typ: pa.DataType, default: float, n: int
) -> pa.Array:
    """Parse promoted text values once per distinct value (few distinct codes per batch)."""
    if not found:
        return pa.repeat(pa.scalar(default, typ), n)
    texts = pc.coalesce(*found) if len(found) > 1 else found[0]
    enc = texts.dictionary_encode()
    parsed = pa.array([fn(t) for t in enc.dictionary.to_pylist()], typ)
    return pc.fill_null(parsed.take(enc.indices), pa.scalar(default, typ))
