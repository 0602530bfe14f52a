"""Statistics reports for the principal's enterprise, over at most a year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.clock import as_utc
from koomsg.core.errors import BadInput
from koomsg.core.principal import Principal
from koomsg.core.stats.report import ReportType, StatsRow, build_rows, hourly_counts
from koomsg.core.stats.rollup import HOUR, floor_hour

MAX_RANGE = timedelta(days=366)


def parse_zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(
            "timezone", f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai"
        ) from None


def report_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) widened to whole UTC hours; refused when empty or over a year."""
    start, end = as_utc(start), as_utc(end)
    if start >= end:
        raise BadInput("to", "the end of the range must come after its start")
    if end - start > MAX_RANGE:
        raise BadInput("to", "a statistics report covers at most one year (366 days)")
    last = floor_hour(end)
    return floor_hour(start), last if last == end else last + HOUR


async def statistics_report(
    session: AsyncSession,
    *,
    principal: Principal,
    report_type: ReportType,
    start: datetime,
    end: datetime,
    timezone: str | None = None,
    task_id: str | None = None,
    template_id: str | None = None,
    sender_address_id: str | None = None,
) -> list[StatsRow]:
    enterprise_id = principal.require_enterprise()
    zone = parse_zone(timezone) or UTC
    start, end = report_range(start, end)
    hours = await hourly_counts(
        session,
        enterprise_id=enterprise_id,
        start=start,
        end=end,
        filters={
            "task_id": task_id,
            "template_id": template_id,
            "sender_address_id": sender_address_id,
        },
    )
    return build_rows(report_type, hours, start=start, end=end, zone=zone)
