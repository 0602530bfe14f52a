"""Dispatch due messages per sending task

The dispatcher now reads due rows per SENDING task, so starting a task no
longer rewrites every one of its rows; one index serves that, task counts
and completion checks, and replaces two.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_message_task_dispatch", "message", ["task_id", "status", "dispatch_after"])
    op.drop_index("ix_message_task_status", table_name="message")
    op.drop_index("ix_message_dispatch", table_name="message")


def downgrade() -> None:
    op.create_index("ix_message_dispatch", "message", ["status", "dispatch_after"])
    op.create_index("ix_message_task_status", "message", ["task_id", "status"])
    op.drop_index("ix_message_task_dispatch", table_name="message")
