from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from koomsg.core.clock import utcnow
from koomsg.core.db import UTCDateTime
from koomsg.core.ids import new_id
from koomsg.core.principal import PrincipalKind


class IamUser(SQLModel, table=True):
    __tablename__ = "iam_user"
    __table_args__ = (UniqueConstraint("enterprise_id", "name"),)

    id: str = Field(default_factory=lambda: new_id("usr"), primary_key=True, max_length=40)
    enterprise_id: str = Field(foreign_key="enterprise.id", index=True, max_length=40)
    name: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class IamGroup(SQLModel, table=True):
    __tablename__ = "iam_group"
    __table_args__ = (UniqueConstraint("enterprise_id", "name"),)

    id: str = Field(default_factory=lambda: new_id("grp"), primary_key=True, max_length=40)
    enterprise_id: str = Field(foreign_key="enterprise.id", index=True, max_length=40)
    name: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class GroupMember(SQLModel, table=True):
    __tablename__ = "iam_group_member"

    group_id: str = Field(foreign_key="iam_group.id", primary_key=True, max_length=40)
    user_id: str = Field(foreign_key="iam_user.id", primary_key=True, max_length=40, index=True)


class Policy(SQLModel, table=True):
    __tablename__ = "iam_policy"
    __table_args__ = (UniqueConstraint("enterprise_id", "name"),)

    id: str = Field(default_factory=lambda: new_id("pol"), primary_key=True, max_length=40)
    enterprise_id: str = Field(foreign_key="enterprise.id", index=True, max_length=40)
    name: str = Field(max_length=128)
    system: bool = False
    document: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class GroupPolicy(SQLModel, table=True):
    __tablename__ = "iam_group_policy"

    group_id: str = Field(foreign_key="iam_group.id", primary_key=True, max_length=40)
    policy_id: str = Field(foreign_key="iam_policy.id", primary_key=True, max_length=40, index=True)


class AccessKey(SQLModel, table=True):
    """A bearer credential. Only a hash of its secret part is kept."""

    __tablename__ = "access_key"

    id: str = Field(default_factory=lambda: new_id("key"), primary_key=True, max_length=40)
    kind: PrincipalKind = Field(sa_type=String(16))
    name: str = Field(max_length=128)
    enterprise_id: str | None = Field(
        default=None, foreign_key="enterprise.id", index=True, max_length=40
    )
    user_id: str | None = Field(default=None, foreign_key="iam_user.id", index=True, max_length=40)
    secret_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Written off the request path, at most once a minute (koomsg.core.iam.usage).
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
