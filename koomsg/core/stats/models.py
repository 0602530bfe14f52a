"""Hourly aggregates of messages, the only thing statistics reports read.

One row per (enterprise, UTC hour, task, template, sender address) with the
counts of that hour's messages by status. Rows are derived, never edited:
the rollup deletes an hour's rows and recomputes them from the messages
table, so a report can neither count a message twice nor miss one.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Index, SQLModel

from koomsg.core.db import UTCDateTime


class HourlyStat(SQLModel, table=True):
    __tablename__ = "stats_hourly"
    __table_args__ = (Index("ix_stats_hourly_enterprise_hour", "enterprise_id", "hour"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: str = Field(max_length=40)
    hour: datetime = Field(sa_type=UTCDateTime, index=True)
    task_id: str | None = Field(default=None, max_length=40)
    template_id: str = Field(max_length=40)
    sender_address_id: str = Field(max_length=40)
    to_send: int = 0  # TO_SEND and SENDING
    delivered: int = 0
    failed: int = 0
    rejected: int = 0
    opened: int = 0  # messages opened at least once
    clicked: int = 0  # messages with at least one click
    unsubscribed: int = 0


class StatsWatermark(SQLModel, table=True):
    """How far the rollup got: messages created or changed before ``value`` are rolled up."""

    __tablename__ = "stats_watermark"

    name: str = Field(primary_key=True, max_length=32)
    value: datetime | None = Field(default=None, sa_type=UTCDateTime)
