"""Keeping the hourly aggregates in step with the messages table.

Each pass finds the "dirty" hours: hours of messages inserted since the last
watermark (their ids start with the creation time, so the primary key finds
them) or changed since (``changed_at``, indexed), both reaching back ``skew``
seconds to cover transactions that committed late. Every dirty hour is then
recomputed from scratch (DELETE + INSERT ... SELECT ... GROUP BY over the
messages created in it), so the result never depends on how often or in
which order passes ran.

Passes serialise on the watermark row: its UPDATE is the first statement of
the transaction, which takes the row lock on PostgreSQL and the write lock on
SQLite, so two processes never recompute the same hour at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    func,
    insert,
    literal_column,
    select,
    type_coerce,
    union,
    update,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.clock import as_utc, utcnow
from koomsg.core.db import UTCDateTime
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.ids import id_floor
from koomsg.core.stats.models import HourlyStat, StatsWatermark

MESSAGE = Message.__table__  # type: ignore[attr-defined]
STATS = HourlyStat.__table__  # type: ignore[attr-defined]
WATERMARK = StatsWatermark.__table__  # type: ignore[attr-defined]
WATERMARK_NAME = "hourly"
HOUR = timedelta(hours=1)
# Ids and created_at come from two clock readings a few microseconds apart:
# widen the id range so a message stamped across an hour boundary is still found.
ID_SLACK = timedelta(minutes=1)
# Hours merged into one DELETE + INSERT when they lie this close together.
MAX_RANGE_HOURS = 24 * 31


def hour_of(session: AsyncSession) -> ColumnElement[Any]:
    """The UTC hour a message was created in, as SQL; constants are literals so the
    same expression can appear in SELECT and GROUP BY on PostgreSQL."""
    created = MESSAGE.c.created_at
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        utc: ColumnElement[Any] = literal_column("'UTC'")
        naive = func.date_trunc(literal_column("'hour'"), func.timezone(utc, created))
        expression = func.timezone(utc, naive)
    else:
        # The format UTCDateTime stores on SQLite, so the value compares and reads back.
        expression = func.strftime(literal_column("'%Y-%m-%d %H:00:00.000000'"), created)
    return type_coerce(expression, UTCDateTime())


def _counters() -> list[ColumnElement[Any]]:
    status = MESSAGE.c.status

    def count(*statuses: MessageStatus) -> ColumnElement[Any]:
        return func.coalesce(
            func.sum(case((status.in_([str(s) for s in statuses]), 1), else_=0)), 0
        )

    return [
        count(MessageStatus.TO_SEND, MessageStatus.SENDING).label("to_send"),
        count(MessageStatus.DELIVERED).label("delivered"),
        count(MessageStatus.FAILED).label("failed"),
        count(MessageStatus.REJECTED).label("rejected"),
        func.count(MESSAGE.c.first_opened_at).label("opened"),
        func.count(MESSAGE.c.first_clicked_at).label("clicked"),
        func.count(MESSAGE.c.unsubscribed_at).label("unsubscribed"),
    ]


def _created_between(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(
        MESSAGE.c.id >= id_floor("msg", start - ID_SLACK),
        MESSAGE.c.id < id_floor("msg", end + ID_SLACK),
        MESSAGE.c.created_at >= start,
        MESSAGE.c.created_at < end,
    )


async def recompute(session: AsyncSession, *, start: datetime, end: datetime) -> None:
    """Replace the aggregates of the hours in [start, end) with fresh ones."""
    hour = hour_of(session)
    keys = [
        MESSAGE.c.enterprise_id,
        hour,
        MESSAGE.c.task_id,
        MESSAGE.c.template_id,
        MESSAGE.c.sender_address_id,
    ]
    counters = _counters()
    grouped = select(*keys, *counters).where(_created_between(start, end)).group_by(*keys)
    columns = ["enterprise_id", "hour", "task_id", "template_id", "sender_address_id"]
    columns += [c.name for c in counters]
    await session.execute(delete(STATS).where(STATS.c.hour >= start, STATS.c.hour < end))
    await session.execute(insert(STATS).from_select(columns, grouped))


async def dirty_hours(session: AsyncSession, *, since: datetime | None) -> list[datetime]:
    """Hours holding messages created or changed at or after ``since`` (all hours if None)."""
    hour = hour_of(session).label("hour")
    query: Any
    if since is None:
        query = select(hour).distinct()
    else:
        query = union(
            select(hour).where(MESSAGE.c.id >= id_floor("msg", since)),
            select(hour).where(MESSAGE.c.changed_at >= since),
        )
    rows = (await session.execute(query)).scalars().all()
    return sorted({_as_hour(value) for value in rows if value is not None})


def _as_hour(value: Any) -> datetime:
    if isinstance(value, str):  # a UNION can lose the column type on SQLite
        value = datetime.fromisoformat(value)
    return as_utc(value).replace(minute=0, second=0, microsecond=0)


def ranges(hours: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive hours merged into [start, end) ranges, each at most a month long."""
    merged: list[tuple[datetime, datetime]] = []
    for hour in hours:
        if merged and merged[-1][1] == hour and hour - merged[-1][0] < MAX_RANGE_HOURS * HOUR:
            merged[-1] = (merged[-1][0], hour + HOUR)
        else:
            merged.append((hour, hour + HOUR))
    return merged


async def _lock_watermark(session: AsyncSession) -> tuple[bool, datetime | None]:
    """Take the rollup lock; returns (found, watermark)."""
    locked = (
        await session.execute(
            update(WATERMARK)
            .where(WATERMARK.c.name == WATERMARK_NAME)
            .values(name=WATERMARK.c.name)
            .returning(WATERMARK.c.value)
        )
    ).first()
    if locked is None:
        return False, None
    value = locked[0]
    return True, None if value is None else as_utc(_parse(value))


def _parse(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value  # type: ignore[no-any-return]


async def rollup(
    session: AsyncSession, *, now: datetime | None = None, skew: timedelta = timedelta(minutes=5)
) -> int:
    """One pass: recompute every dirty hour, move the watermark; returns the hours recomputed.

    Runs in the caller's transaction, which should hold nothing else: the
    watermark lock is released only when it ends.
    """
    now = now or utcnow()
    found, watermark = await _lock_watermark(session)
    if not found:
        await _create_watermark(session)
        found, watermark = await _lock_watermark(session)
    since = None if watermark is None else watermark - skew
    hours = await dirty_hours(session, since=since)
    for start, end in ranges(hours):
        await recompute(session, start=start, end=end)
    await session.execute(
        update(WATERMARK).where(WATERMARK.c.name == WATERMARK_NAME).values(value=now)
    )
    return len(hours)


async def _create_watermark(session: AsyncSession) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect: Any = postgresql if session.bind.dialect.name == "postgresql" else sqlite  # type: ignore[union-attr]
    statement = dialect.insert(WATERMARK).values(name=WATERMARK_NAME, value=None)
    await session.execute(statement.on_conflict_do_nothing(index_elements=["name"]))


async def purge(session: AsyncSession, *, before: datetime, chunk: int = 5000) -> tuple[int, int]:
    """Delete aggregates of hours before ``before`` and up to ``chunk`` messages created
    before it; returns (aggregate rows, messages) deleted. Call again while messages remain."""
    stats = await session.execute(delete(STATS).where(STATS.c.hour < before))
    oldest = (
        select(MESSAGE.c.id)
        .where(MESSAGE.c.id < id_floor("msg", before))
        .order_by(MESSAGE.c.id)
        .limit(chunk)
    )
    messages = await session.execute(
        delete(MESSAGE).where(MESSAGE.c.id.in_(oldest.scalar_subquery()))
    )
    return int(stats.rowcount or 0), int(messages.rowcount or 0)  # type: ignore[attr-defined]


def floor_hour(moment: datetime) -> datetime:
    return as_utc(moment).replace(minute=0, second=0, microsecond=0)
