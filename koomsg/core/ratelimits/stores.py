"""Where buckets live: the store contract and the per-process memory store.

A store answers ``take`` (spend a token if there is one) and ``peek`` (would
there be one?) atomically per key for every process that shares it. ``now``
is handed in by the limiter, so tests drive time with a fake clock and all
stores agree on the arithmetic (``bucket.decide``).
"""

from __future__ import annotations

from typing import Protocol

from koomsg.core.ratelimits.bucket import Bucket, Verdict, decide

# Keys remembered by the memory store before full buckets are forgotten.
_MEMORY_KEYS = 100_000


class BucketStore(Protocol):
    async def take(self, key: str, bucket: Bucket, now: float) -> Verdict: ...

    async def peek(self, key: str, bucket: Bucket, now: float) -> Verdict: ...

    async def close(self) -> None: ...


class MemoryStore:
    """One process's buckets: the embedded default, where one process serves everything.

    Nothing awaits between reading and writing a key, so the event loop makes
    each take atomic without a lock.
    """

    def __init__(self) -> None:
        self._tats: dict[str, float] = {}

    async def take(self, key: str, bucket: Bucket, now: float) -> Verdict:
        verdict = decide(self._tats.get(key), now, bucket)
        if verdict.allowed:
            if len(self._tats) >= _MEMORY_KEYS:
                self._forget_full(now)
            self._tats[key] = verdict.tat
        return verdict

    async def peek(self, key: str, bucket: Bucket, now: float) -> Verdict:
        return decide(self._tats.get(key), now, bucket)

    def _forget_full(self, now: float) -> None:
        # A TAT in the past is a full bucket: dropping it changes no answer.
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}

    async def close(self) -> None:
        self._tats.clear()
