"""Sending tasks: one campaign to many recipients, now or at a scheduled time.

A task snapshots the template's approved revision and the sender it was
created with, so editing a template later never changes what a task sends.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Index, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from koomsg.core.clock import utcnow
from koomsg.core.db import UTCDateTime
from koomsg.core.ids import new_id


class SendingType(enum.StrEnum):
    NOW = "NOW"
    SCHEDULED = "SCHEDULED"


class TaskStatus(enum.StrEnum):
    PREPARING = "PREPARING"  # recipients are being imported
    SCHEDULED = "SCHEDULED"  # waiting for scheduled_at
    SENDING = "SENDING"
    COMPLETED = "COMPLETED"  # every message is in a final state
    CANCELED = "CANCELED"
    FAILED = "FAILED"  # e.g. the recipient file could not be read

    @property
    def is_final(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.CANCELED, TaskStatus.FAILED)


UNFINISHED_TASK_STATUSES = (TaskStatus.PREPARING, TaskStatus.SCHEDULED, TaskStatus.SENDING)


class SendingTask(SQLModel, table=True):
    __tablename__ = "sending_task"
    __table_args__ = (
        Index("ix_sending_task_due", "status", "scheduled_at"),
        Index("ix_sending_task_enterprise_name", "enterprise_id", "name"),
    )

    id: str = Field(default_factory=lambda: new_id("tsk"), primary_key=True, max_length=40)
    enterprise_id: str = Field(foreign_key="enterprise.id", index=True, max_length=40)
    name: str = Field(max_length=128)
    subject: str = Field(max_length=256)
    template_id: str = Field(index=True, max_length=40)
    template_name: str = Field(max_length=128)
    # The template's approved revision when the task was created, snapshotted below: an
    # edit (approved or not) never changes what the task sends.
    template_revision: int = 1
    body_type: str = Field(sa_type=String(16))
    body: str = Field(sa_type=Text)
    params: list[str] = Field(default_factory=list, sa_type=JSON)
    support_unsubscribe: bool = False
    sender_address_id: str = Field(index=True, max_length=40)
    sender_domain_id: str = Field(index=True, max_length=40)
    sender_address: str = Field(max_length=320)
    sender_alias: str | None = Field(default=None, max_length=64)
    sending_type: SendingType = Field(sa_type=String(16))
    scheduled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: TaskStatus = Field(default=TaskStatus.PREPARING, sa_type=String(16), index=True)
    failure_reason: str | None = Field(default=None, max_length=1024)
    # Where an uploaded recipient file waits for its import (deleted afterwards).
    recipient_file: str | None = Field(default=None, max_length=1024)
    recipient_file_kind: str | None = Field(default=None, max_length=8)  # "xlsx" or "csv"
    import_claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    import_error_count: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TaskAttachment(SQLModel, table=True):
    """An attachment, stored once per task and sent with every message of it."""

    __tablename__ = "task_attachment"

    id: str = Field(default_factory=lambda: new_id("att"), primary_key=True, max_length=40)
    task_id: str = Field(foreign_key="sending_task.id", index=True, max_length=40)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=128)
    size: int
    data: bytes = Field(sa_type=LargeBinary)


class RecipientImportError(SQLModel, table=True):
    """A rejected row of a recipient file (the first few thousand are kept)."""

    __tablename__ = "recipient_import_error"

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(foreign_key="sending_task.id", index=True, max_length=40)
    row: int
    value: str | None = Field(default=None, max_length=512)
    reason: str = Field(max_length=512)
