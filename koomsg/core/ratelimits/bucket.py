"""The token bucket as GCRA (generic cell rate algorithm).

A bucket of ``burst`` tokens refilled at ``rate`` tokens a second is fully
described by one number per key, its *theoretical arrival time* (TAT): the
moment the bucket would be full again. Taking a token moves the TAT forward
by one interval (``1 / rate``); a take is allowed while the TAT stays within
``burst`` intervals of now. One number means one atomic read-modify-write in
every store (a dict, one SQL ``UPDATE``, one Redis script), with no refill
timer anywhere, and a TAT in the past is the same as no row at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from koomsg.core.errors import KoomsgError

# Float rounding must not refuse the last token of a burst.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Bucket:
    """``rate`` tokens a second, at most ``burst`` at once."""

    rate: float
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        return self.interval * self.burst


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    tat: float  # the TAT to store when allowed
    retry_after: float = 0.0  # seconds until a token is back, when refused


def decide(tat: float | None, now: float, bucket: Bucket) -> Verdict:
    """Whether one token can be taken at ``now`` from a bucket whose TAT is ``tat``."""
    start = now if tat is None or tat < now else tat
    new_tat = start + bucket.interval
    if new_tat - now <= bucket.tolerance + _EPSILON:
        return Verdict(allowed=True, tat=new_tat)
    return Verdict(allowed=False, tat=start, retry_after=new_tat - bucket.tolerance - now)


def whole_seconds(retry_after: float) -> int:
    """Whole seconds, at least 1: a client that waits this long finds a token."""
    return max(1, math.ceil(retry_after - _EPSILON))


class RateLimited(KoomsgError):
    """Over a rate limit: nothing was executed; try again after ``retry_after`` seconds."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = whole_seconds(retry_after)
