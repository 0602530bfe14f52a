"""Statistics reports: hourly aggregates summed into hours, days or months.

Only the aggregate table is read (one indexed range per report). Days and
months are sums of UTC hours; with a time zone, an hour belongs to the day
(month) its start falls in there. For zones whose offset is not a whole
number of hours (Asia/Kolkata, +05:30) a day therefore begins at the first
UTC hour starting inside it (00:30 local time in Kolkata).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.stats.models import HourlyStat
from koomsg.core.stats.rollup import HOUR

STATS = HourlyStat.__table__  # type: ignore[attr-defined]
COUNTERS = ("to_send", "delivered", "failed", "rejected", "opened", "clicked", "unsubscribed")


class ReportType(enum.StrEnum):
    HOURLY = "HOURLY"
    DAILY = "DAILY"
    MONTHLY = "MONTHLY"


@dataclass
class Counts:
    to_send: int = 0
    delivered: int = 0
    failed: int = 0
    rejected: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0

    @classmethod
    def sum(cls, items: list[tuple[int, ...]]) -> Counts:
        # Plain tuples summed column-wise: a yearly report adds ~9 000 hours.
        return cls(*(sum(column) for column in zip(*items, strict=True))) if items else cls()


@dataclass(frozen=True)
class StatsRow:
    time: datetime
    sent: int
    successful: int
    failed: int
    to_send: int
    rejected: int
    delivery_rate: float
    opens: int
    clicks: int
    unsubscribes: int
    bounces: int

    @classmethod
    def of(cls, time: datetime, counts: Counts) -> StatsRow:
        sent = counts.delivered + counts.failed
        return cls(
            time=time,
            sent=sent,
            successful=counts.delivered,
            failed=counts.failed,
            to_send=counts.to_send,
            rejected=counts.rejected,
            delivery_rate=counts.delivered / sent if sent else 0.0,
            opens=counts.opened,
            clicks=counts.clicked,
            unsubscribes=counts.unsubscribed,
            bounces=counts.failed,
        )


async def hourly_counts(
    session: AsyncSession,
    *,
    enterprise_id: str,
    start: datetime,
    end: datetime,
    filters: dict[str, str | None],
) -> dict[datetime, tuple[int, ...]]:
    """Counts (in ``COUNTERS`` order) per UTC hour in [start, end), summed over tasks,
    templates and senders."""
    query = (
        select(STATS.c.hour, *(func.sum(STATS.c[name]) for name in COUNTERS))
        .where(STATS.c.enterprise_id == enterprise_id, STATS.c.hour >= start, STATS.c.hour < end)
        .group_by(STATS.c.hour)
    )
    for column, value in filters.items():
        if value is not None:
            query = query.where(STATS.c[column] == value)
    return {
        hour: tuple(int(v or 0) for v in values)
        for hour, *values in (await session.execute(query)).all()
    }


def _bucket(report_type: ReportType, hour: datetime, zone: tzinfo) -> Any:
    if report_type is ReportType.HOURLY:
        return hour
    local = hour.astimezone(zone)
    return local.date() if report_type is ReportType.DAILY else (local.year, local.month)


def _buckets(
    report_type: ReportType, first: datetime, last: datetime, zone: tzinfo
) -> Iterator[Any]:
    if report_type is ReportType.HOURLY:
        hour = first
        while hour <= last:
            yield hour
            hour += HOUR
        return
    start, stop = _bucket(report_type, first, zone), _bucket(report_type, last, zone)
    if report_type is ReportType.DAILY:
        day: date = start
        while day <= stop:
            yield day
            day += timedelta(days=1)
        return
    year, month = start
    while (year, month) <= stop:
        yield (year, month)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _start_of(report_type: ReportType, bucket: Any, zone: tzinfo) -> datetime:
    if report_type is ReportType.HOURLY:
        return bucket  # type: ignore[no-any-return]
    if report_type is ReportType.DAILY:
        local = datetime(bucket.year, bucket.month, bucket.day, tzinfo=zone)
    else:
        local = datetime(bucket[0], bucket[1], 1, tzinfo=zone)
    return local.astimezone(UTC)


def build_rows(
    report_type: ReportType,
    hours: dict[datetime, tuple[int, ...]],
    *,
    start: datetime,
    end: datetime,
    zone: tzinfo,
) -> list[StatsRow]:
    """Every bucket of [start, end) in order, empty ones included (a continuous time axis)."""
    grouped: dict[Any, list[tuple[int, ...]]] = {
        bucket: [] for bucket in _buckets(report_type, start, end - HOUR, zone)
    }
    for hour, counts in hours.items():
        members = grouped.get(_bucket(report_type, hour, zone))
        if members is not None:
            members.append(counts)
    return [StatsRow.of(_start_of(report_type, b, zone), Counts.sum(c)) for b, c in grouped.items()]
