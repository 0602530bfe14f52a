from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from koomsg.core.stats import service as stats
from koomsg.schema.context import Info
from koomsg.schema.stats.types import ReportType, StatisticsRow


@strawberry.type
class StatsQuery:
    @strawberry.field(
        description="The sending statistics report: every hour, day or month from `from` "
        "(inclusive) to `to` (exclusive), empty periods included, at most one year (366 days). "
        "Data older than a year is deleted."
    )
    async def statistics_report(
        self,
        info: Info,
        report_type: ReportType,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        timezone: Annotated[
            str | None,
            strawberry.argument(
                description="IANA time zone (e.g. Asia/Shanghai) whose days and months DAILY and "
                "MONTHLY rows follow; UTC when omitted. Hours stay UTC hours, so in zones "
                "with a half-hour offset a day starts at the first whole UTC hour inside it."
            ),
        ] = None,
        task_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this sending task.")
        ] = None,
        template_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this template.")
        ] = None,
        sender_address_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this sender address.")
        ] = None,
    ) -> list[StatisticsRow]:
        async with info.context.read("KooMessage:statistics:get") as (session, principal):
            rows = await stats.statistics_report(
                session,
                principal=principal,
                report_type=report_type,
                start=from_,
                end=to,
                timezone=timezone,
                task_id=task_id,
                template_id=template_id,
                sender_address_id=sender_address_id,
            )
        return [StatisticsRow.from_row(row) for row in rows]
