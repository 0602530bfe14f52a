"""sending tasks, their attachments and import errors, messages, idempotency keys, suppression

Revision ID: 0004
Revises: 0002, 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import koomsg.core.db
from alembic import op

revision: str = "0004"
down_revision: str | tuple[str, ...] | None = ("0002", "0003")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enterprise_id", "key"),
    )
    op.create_table(
        "sending_task",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("template_name", sa.String(length=128), nullable=False),
        sa.Column("body_type", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("support_unsubscribe", sa.Boolean(), nullable=False),
        sa.Column("sender_address_id", sa.String(length=40), nullable=False),
        sa.Column("sender_domain_id", sa.String(length=40), nullable=False),
        sa.Column("sender_address", sa.String(length=320), nullable=False),
        sa.Column("sender_alias", sa.String(length=64), nullable=True),
        sa.Column("sending_type", sa.String(length=16), nullable=False),
        sa.Column("scheduled_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.String(length=1024), nullable=True),
        sa.Column("recipient_file", sa.String(length=1024), nullable=True),
        sa.Column("recipient_file_kind", sa.String(length=8), nullable=True),
        sa.Column("import_claimed_until", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("import_error_count", sa.Integer(), nullable=False),
        sa.Column("created_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sending_task_created_at", "sending_task", ["created_at"])
    op.create_index("ix_sending_task_due", "sending_task", ["status", "scheduled_at"])
    op.create_index("ix_sending_task_enterprise_id", "sending_task", ["enterprise_id"])
    op.create_index("ix_sending_task_enterprise_name", "sending_task", ["enterprise_id", "name"])
    op.create_index("ix_sending_task_sender_address_id", "sending_task", ["sender_address_id"])
    op.create_index("ix_sending_task_sender_domain_id", "sending_task", ["sender_domain_id"])
    op.create_index("ix_sending_task_status", "sending_task", ["status"])
    op.create_index("ix_sending_task_template_id", "sending_task", ["template_id"])

    op.create_table(
        "suppression",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=1024), nullable=True),
        sa.Column("message_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enterprise_id", "address"),
    )
    op.create_index("ix_suppression_enterprise_id", "suppression", ["enterprise_id"])

    op.create_table(
        "message",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=True),
        sa.Column("send_method", sa.String(length=8), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("template_name", sa.String(length=128), nullable=False),
        sa.Column("sender_address_id", sa.String(length=40), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("dispatch_after", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_until", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("created_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.String(length=1024), nullable=True),
        sa.Column("last_reply", sa.String(length=1024), nullable=True),
        sa.Column("open_count", sa.Integer(), nullable=False),
        sa.Column("first_opened_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("click_count", sa.Integer(), nullable=False),
        sa.Column("first_clicked_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("unsubscribed_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("changed_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["sending_task.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_message_changed", "message", ["changed_at"])
    op.create_index("ix_message_dispatch", "message", ["status", "dispatch_after"])
    op.create_index("ix_message_enterprise_id", "message", ["enterprise_id", "id"])
    op.create_index("ix_message_enterprise_recipient", "message", ["enterprise_id", "recipient"])
    op.create_index("ix_message_enterprise_status", "message", ["enterprise_id", "status", "id"])
    op.create_index("ix_message_lease", "message", ["status", "lease_until"])
    op.create_index("ix_message_task_status", "message", ["task_id", "status"])

    op.create_table(
        "recipient_import_error",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=True),
        sa.Column("reason", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["sending_task.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_recipient_import_error_task_id", "recipient_import_error", ["task_id"])

    op.create_table(
        "task_attachment",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["sending_task.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_task_attachment_task_id", "task_attachment", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_task_attachment_task_id", table_name="task_attachment")
    op.drop_table("task_attachment")
    op.drop_index("ix_recipient_import_error_task_id", table_name="recipient_import_error")
    op.drop_table("recipient_import_error")
    op.drop_index("ix_message_changed", table_name="message")
    op.drop_index("ix_message_dispatch", table_name="message")
    op.drop_index("ix_message_enterprise_id", table_name="message")
    op.drop_index("ix_message_enterprise_recipient", table_name="message")
    op.drop_index("ix_message_enterprise_status", table_name="message")
    op.drop_index("ix_message_lease", table_name="message")
    op.drop_index("ix_message_task_status", table_name="message")
    op.drop_table("message")
    op.drop_index("ix_suppression_enterprise_id", table_name="suppression")
    op.drop_table("suppression")
    op.drop_index("ix_sending_task_created_at", table_name="sending_task")
    op.drop_index("ix_sending_task_due", table_name="sending_task")
    op.drop_index("ix_sending_task_enterprise_id", table_name="sending_task")
    op.drop_index("ix_sending_task_enterprise_name", table_name="sending_task")
    op.drop_index("ix_sending_task_sender_address_id", table_name="sending_task")
    op.drop_index("ix_sending_task_sender_domain_id", table_name="sending_task")
    op.drop_index("ix_sending_task_status", table_name="sending_task")
    op.drop_index("ix_sending_task_template_id", table_name="sending_task")
    op.drop_table("sending_task")
    op.drop_table("idempotency_key")
