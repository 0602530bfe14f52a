"""Buckets in the database: shared by every process on one PostgreSQL (or SQLite) database.

A take is one conditional ``UPDATE``: the row moves forward only while the
bucket still has a token, so concurrent takes from any number of processes
serialize on the row lock and never spend more than the bucket holds. The
first take of a key inserts its row (``ON CONFLICT DO NOTHING``; a lost race
goes back to the ``UPDATE``). Rows of full buckets carry no information and
are deleted now and then.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, delete, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.db import Database
from koomsg.core.ratelimits.bucket import Bucket, Verdict, decide
from koomsg.core.ratelimits.models import RateLimitBucket

_PRUNE_EVERY = 1000  # takes between two deletions of full buckets
_EPSILON = 1e-9


class DatabaseStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._takes = 0

    async def take(self, key: str, bucket: Bucket, now: float) -> Verdict:
        self._takes += 1
        if self._takes % _PRUNE_EVERY == 0:
            await self._prune(now)
        async with self.db.transaction() as session:
            for _ in range(3):
                if await self._advance(session, key, bucket, now):
                    return Verdict(allowed=True, tat=now)
                tat = await self._tat(session, key)
                if tat is None:
                    if await self._insert_first(session, key, bucket, now):
                        return Verdict(allowed=True, tat=now + bucket.interval)
                    continue  # another process inserted it first: update theirs
                verdict = decide(tat, now, bucket)
                if not verdict.allowed:
                    return verdict
                # The row appeared between our UPDATE and SELECT: only an UPDATE may spend.
            # Still racing after three tries: refuse rather than spin; a second later it passes.
            return Verdict(allowed=False, tat=now, retry_after=bucket.interval)

    async def _insert_first(
        self, session: AsyncSession, key: str, bucket: Bucket, now: float
    ) -> bool:
        inserted = await session.execute(
            _insert(session)
            .values(key=key, tat=now + bucket.interval)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        return bool(inserted.rowcount)  # type: ignore[attr-defined]

    async def _advance(self, session: AsyncSession, key: str, bucket: Bucket, now: float) -> bool:
        tat = col(RateLimitBucket.tat)
        start = case((tat > now, tat), else_=now)
        moved = await session.execute(
            update(RateLimitBucket)
            .where(
                col(RateLimitBucket.key) == key,
                start + bucket.interval - now <= bucket.tolerance + _EPSILON,
            )
            .values(tat=start + bucket.interval)
        )
        return bool(moved.rowcount)  # type: ignore[attr-defined]

    async def _tat(self, session: AsyncSession, key: str) -> float | None:
        found = await session.execute(
            select(col(RateLimitBucket.tat)).where(col(RateLimitBucket.key) == key)
        )
        value = found.scalar_one_or_none()
        return None if value is None else float(value)

    async def peek(self, key: str, bucket: Bucket, now: float) -> Verdict:
        async with self.db.session() as session:
            return decide(await self._tat(session, key), now, bucket)

    async def _prune(self, now: float) -> None:
        async with self.db.transaction() as session:
            await session.execute(delete(RateLimitBucket).where(col(RateLimitBucket.tat) < now))

    async def close(self) -> None:
        return None


def _insert(session: AsyncSession) -> Any:
    """The dialect's INSERT: both have ``on_conflict_do_nothing``."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite  # type: ignore[union-attr]
    return dialect.insert(RateLimitBucket)
