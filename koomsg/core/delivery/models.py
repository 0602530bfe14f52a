"""Messages: one row per recipient, the source of truth for delivery.

A row exists (TO_SEND) before anything is enqueued. ``dispatch_after`` says
when the dispatcher should (re)enqueue it, once its task is SENDING; a worker
claims it (SENDING with ``lease_until`` and a ``lease_token``) and records the
outcome. The worker renews the lease while it holds the row; a row whose
lease ran out goes back to TO_SEND, so a killed worker or a lost broker
message loses nothing. ``claims`` counts the claims since the last outcome:
a row whose worker died ``KOOMSG_MAX_CLAIMS`` times ends FAILED instead of
killing workers forever.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from koomsg.core.clock import utcnow
from koomsg.core.db import UTCDateTime
from koomsg.core.ids import new_id


class MessageStatus(enum.StrEnum):
    TO_SEND = "TO_SEND"
    SENDING = "SENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"


FINAL_STATUSES = (MessageStatus.DELIVERED, MessageStatus.FAILED, MessageStatus.REJECTED)
PENDING_STATUSES = (MessageStatus.TO_SEND, MessageStatus.SENDING)
# The failure reason of a poison message, around the number of times its worker stopped.
STOPPED_REASON = ("could not be sent: the worker stopped ", " times while sending it")


def is_stopped_reason(reason: str | None) -> bool:
    """Whether a FAILED row's reason says its workers died sending it (no known outcome)."""
    return bool(reason) and str(reason).startswith(STOPPED_REASON[0])


class SendMethod(enum.StrEnum):
    CONSOLE = "CONSOLE"
    API = "API"


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        # The dispatcher reads due rows per SENDING task (and task_id NULL for API
        # sends); counts and completion use the (task_id, status) prefix.
        Index("ix_message_task_dispatch", "task_id", "status", "dispatch_after"),
        Index("ix_message_lease", "status", "lease_until"),
        Index("ix_message_enterprise_id", "enterprise_id", "id"),
        Index("ix_message_enterprise_recipient", "enterprise_id", "recipient"),
        Index("ix_message_enterprise_status", "enterprise_id", "status", "id"),
        # Statistics roll up the hours whose messages changed since their last pass.
        Index("ix_message_changed", "changed_at"),
    )

    id: str = Field(default_factory=lambda: new_id("msg"), primary_key=True, max_length=40)
    enterprise_id: str = Field(foreign_key="enterprise.id", max_length=40)
    task_id: str | None = Field(default=None, foreign_key="sending_task.id", max_length=40)
    send_method: SendMethod = Field(default=SendMethod.CONSOLE, sa_type=String(8))
    template_id: str = Field(max_length=40)
    template_name: str = Field(max_length=128)
    # The template revision it is built from (None: sent before templates had revisions).
    template_revision: int | None = None
    sender_address_id: str = Field(max_length=40)
    sender: str = Field(max_length=320)
    recipient: str = Field(max_length=320)
    subject: str = Field(max_length=1024)
    params: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    status: MessageStatus = Field(default=MessageStatus.TO_SEND, sa_type=String(16))
    attempts: int = 0
    dispatch_after: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_token: str | None = Field(default=None, max_length=32)
    # Which process holds the lease (``host:pid:nonce``): a restarted embedded server
    # releases its dead predecessor's rows at once instead of waiting for the lease.
    lease_owner: str | None = Field(default=None, max_length=64)
    claims: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failure_reason: str | None = Field(default=None, max_length=1024)
    last_reply: str | None = Field(default=None, max_length=1024)
    open_count: int = 0
    first_opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    click_count: int = 0
    first_clicked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    unsubscribed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set on every change after the insert (status, open, click, unsubscribe).
    changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IdempotencyKey(SQLModel, table=True):
    """``sendEmail``'s idempotency keys: the same key within 24 hours returns the first message."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("enterprise_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: str = Field(foreign_key="enterprise.id", max_length=40)
    key: str = Field(max_length=255)
    message_id: str = Field(max_length=40)
    # SHA-256 of the request: the same key with another payload is refused (None: keys
    # recorded before payloads were, which match any payload).
    request_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
