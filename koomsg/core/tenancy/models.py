from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from koomsg.core.clock import utcnow
from koomsg.core.db import UTCDateTime
from koomsg.core.ids import new_id


class IndustryClass(enum.StrEnum):
    SENSITIVE = "SENSITIVE"
    NON_SENSITIVE = "NON_SENSITIVE"


class Enterprise(SQLModel, table=True):
    __tablename__ = "enterprise"

    id: str = Field(default_factory=lambda: new_id("ent"), primary_key=True, max_length=40)
    name: str = Field(max_length=128, index=True)
    real_name_verified: bool = False
    industry_class: IndustryClass = Field(default=IndustryClass.NON_SENSITIVE, sa_type=String(16))
    service_enabled: bool = False
    terms_accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    monthly_pay_per_use_cap: int | None = None
    # The operators' override of the API rate limit (core/ratelimits/); None: the defaults.
    rate_limit_rps: int | None = None
    rate_limit_burst: int | None = None
    # Set by an operator's suspendEnterprise (core/tenancy/suspension.py); None: not suspended.
    suspended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    suspended_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
