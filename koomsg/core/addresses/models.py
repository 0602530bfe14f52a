from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from koomsg.core.clock import utcnow
from koomsg.core.db import UTCDateTime
from koomsg.core.ids import new_id


class SenderAddress(SQLModel, table=True):
    """``prefix@<domain name>``; the address is derived, so renaming a domain never leaves
    stale copies behind. Domain names are unique per enterprise, so (domain, prefix) is too."""

    __tablename__ = "sender_address"
    __table_args__ = (UniqueConstraint("domain_id", "prefix_folded"),)

    id: str = Field(default_factory=lambda: new_id("adr"), primary_key=True, max_length=40)
    enterprise_id: str = Field(foreign_key="enterprise.id", index=True, max_length=40)
    domain_id: str = Field(foreign_key="sender_domain.id", index=True, max_length=40)
    prefix: str = Field(max_length=64)
    # Mailbox providers treat local parts case-insensitively: "Info" and "info" are one sender.
    prefix_folded: str = Field(max_length=64)
    alias: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
