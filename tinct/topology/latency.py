"""Mergeable latency histograms for topology edges.

An edge keeps, per minute, how many calls fell into each of a fixed set of
log-scale buckets. Adding two histograms is adding counts per bucket, so a
window of any length is the sum of its minutes (ClickHouse's ``sumMap``) and
its quantiles are as right as for a single minute. The buckets are those of
a Prometheus native histogram with schema 3: upper bounds ``2**(i/8)``
microseconds, eight per doubling, so a quantile is within about 4.5% of the
true value, and 1 µs to 1 h takes 255 buckets. Durations of 1 µs and less
(and clock-skewed negative ones) fall in bucket 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

__all__ = ["BUCKETS_PER_DOUBLING", "MAX_BUCKET", "bucket_of", "upper_bound_ns", "quantile_ns"]

BUCKETS_PER_DOUBLING = 8
# 2**(400/8) µs is some 35 years: nothing real lands past it.
MAX_BUCKET = 400
_LOG_BASE = math.log(2.0) / BUCKETS_PER_DOUBLING


def bucket_of(duration_ns: int) -> int:
    """The bucket a duration falls in: the least ``i`` with ``duration <= 2**(i/8) µs``."""
    if duration_ns <= 1000:
        return 0
    i = math.ceil(math.log(duration_ns / 1000.0) / _LOG_BASE - 1e-9)
    return int(min(max(i, 0), MAX_BUCKET))


def upper_bound_ns(bucket: int) -> float:
    """Upper bound of ``bucket`` in nanoseconds."""
    return float(1000.0 * 2.0 ** (bucket / BUCKETS_PER_DOUBLING))


def quantile_ns(counts: Mapping[int, int] | Iterable[tuple[int, int]], q: float) -> float | None:
    """The ``q``-quantile (0..1) of a histogram ``{bucket: count}``, or None when empty.

    Interpolated linearly inside the bucket the rank falls in, as
    Prometheus's ``histogram_quantile`` does; bucket 0 is taken as [0, 1 µs].
    """
    items = sorted(counts.items() if isinstance(counts, Mapping) else counts)
    total = sum(c for _, c in items)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for bucket, count in items:
        if count <= 0:
            continue
        if seen + count >= rank:
            lower = 0.0 if bucket == 0 else upper_bound_ns(bucket - 1)
            upper = upper_bound_ns(bucket)
            return float(lower + (upper - lower) * max(0.0, rank - seen) / count)
        seen += count
    return upper_bound_ns(items[-1][0])
