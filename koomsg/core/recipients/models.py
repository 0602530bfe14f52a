"""The per-enterprise suppression list: addresses that must never be sent to."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from koomsg.core.clock import utcnow
from koomsg.core.db import UTCDateTime
from koomsg.core.ids import new_id


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "UNSUBSCRIBED"
    HARD_BOUNCE = "HARD_BOUNCE"
    MANUAL = "MANUAL"


class Suppression(SQLModel, table=True):
    __tablename__ = "suppression"
    __table_args__ = (UniqueConstraint("enterprise_id", "address"),)

    id: str = Field(default_factory=lambda: new_id("sup"), primary_key=True, max_length=40)
    enterprise_id: str = Field(foreign_key="enterprise.id", index=True, max_length=40)
    address: str = Field(max_length=320)  # lower-cased
    reason: SuppressionReason = Field(sa_type=String(16))
    detail: str | None = Field(default=None, max_length=1024)
    message_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
