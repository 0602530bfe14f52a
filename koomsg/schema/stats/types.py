from __future__ import annotations

from datetime import datetime

import strawberry

from koomsg.core.stats.report import ReportType as CoreReportType
from koomsg.core.stats.report import StatsRow

ReportType = CoreReportType
strawberry.enum(
    CoreReportType,
    description="One row per UTC hour, per day or per month (days and months in the "
    "report's time zone).",
)


@strawberry.type(
    description="Sending statistics of one hour, day or month. Messages count in the period "
    "they were created in; figures lag the messages by at most about a minute."
)
class StatisticsRow:
    time: datetime = strawberry.field(description="Start of the hour, day or month (UTC).")
    sent: int = strawberry.field(description="Successful + failed.")
    successful: int = strawberry.field(description="Delivered: accepted by the recipient's server.")
    failed: int = strawberry.field(description="Sent but not delivered.")
    to_send: int = strawberry.field(description="Waiting or being sent.")
    rejected: int = strawberry.field(
        description="Not sent: suppressed recipient, unusable sender or template, quota exceeded."
    )
    delivery_rate: float = strawberry.field(
        description="successful / sent, from 0 to 1; 0 when nothing was sent."
    )
    opens: int = strawberry.field(description="Messages opened at least once.")
    clicks: int = strawberry.field(description="Messages with at least one link clicked.")
    unsubscribes: int = strawberry.field(description="Recipients who unsubscribed from a message.")
    bounces: int = strawberry.field(description="Messages that bounced (the failed ones).")

    @classmethod
    def from_row(cls, row: StatsRow) -> StatisticsRow:
        return cls(
            time=row.time,
            sent=row.sent,
            successful=row.successful,
            failed=row.failed,
            to_send=row.to_send,
            rejected=row.rejected,
            delivery_rate=row.delivery_rate,
            opens=row.opens,
            clicks=row.clicks,
            unsubscribes=row.unsubscribes,
            bounces=row.bounces,
        )
