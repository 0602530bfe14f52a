from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlmodel import Field, SQLModel

from koomsg.core.clock import utcnow
from koomsg.core.db import UTCDateTime
from koomsg.core.ids import new_id


class BodyType(enum.StrEnum):
    RICH_TEXT = "RICH_TEXT"
    PLAIN_TEXT = "PLAIN_TEXT"


class TemplateStatus(enum.StrEnum):
    APPROVING = "APPROVING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class Template(SQLModel, table=True):
    __tablename__ = "template"

    id: str = Field(default_factory=lambda: new_id("tpl"), primary_key=True, max_length=40)
    enterprise_id: str = Field(foreign_key="enterprise.id", index=True, max_length=40)
    name: str = Field(max_length=128)
    body_type: BodyType = Field(sa_type=String(16))
    body: str = Field(sa_type=Text)
    params: list[str] = Field(default_factory=list, sa_type=JSON)
    support_unsubscribe: bool = False
    status: TemplateStatus = Field(default=TemplateStatus.APPROVING, sa_type=String(16), index=True)
    review_comment: str | None = Field(default=None, max_length=1024)
    # Who decided the current status and when: an operator's name, or the plugin policy.
    reviewed_by: str | None = Field(default=None, max_length=128)
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    copied_from: str | None = Field(default=None, max_length=80)
    # The content fields and review fields above mirror the latest revision; sends use
    # ``approved_revision`` (None until one is approved), never the latest as such.
    revision: int = 1
    approved_revision: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TemplateRevision(SQLModel, table=True):
    """One immutable version of a template's content and how it was reviewed.

    Every edit adds one; only its review fields ever change. Tasks and API
    messages name the revision they send, so an edit under review never
    reaches a recipient.
    """

    __tablename__ = "template_revision"

    template_id: str = Field(foreign_key="template.id", primary_key=True, max_length=40)
    revision: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    enterprise_id: str = Field(index=True, max_length=40)
    body_type: BodyType = Field(sa_type=String(16))
    body: str = Field(sa_type=Text)
    params: list[str] = Field(default_factory=list, sa_type=JSON)
    support_unsubscribe: bool = False
    status: TemplateStatus = Field(default=TemplateStatus.APPROVING, sa_type=String(16))
    review_comment: str | None = Field(default=None, max_length=1024)
    reviewed_by: str | None = Field(default=None, max_length=128)
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TemplateReview(SQLModel, table=True):
    """Every review decision, kept after the template is deleted (no foreign key on purpose)."""

    __tablename__ = "template_review"

    id: str = Field(default_factory=lambda: new_id("trv"), primary_key=True, max_length=40)
    template_id: str = Field(index=True, max_length=40)
    # The revision decided on (None: decisions recorded before templates had revisions).
    revision: int | None = None
    enterprise_id: str = Field(index=True, max_length=40)
    decision: TemplateStatus = Field(sa_type=String(16))
    comment: str | None = Field(default=None, max_length=1024)
    reviewer_kind: str = Field(max_length=16)  # OPERATOR or POLICY
    reviewer: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
