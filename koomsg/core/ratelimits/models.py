from __future__ import annotations

from sqlalchemy import Float, String
from sqlmodel import Field, SQLModel


class RateLimitBucket(SQLModel, table=True):
    """One token bucket shared by every process on the database (``database`` storage)."""

    __tablename__ = "rate_limit_bucket"

    key: str = Field(primary_key=True, sa_type=String(200))
    # The bucket's theoretical arrival time, in Unix seconds (see bucket.py).
    tat: float = Field(sa_type=Float(precision=53))
