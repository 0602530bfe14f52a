"""Operators can suspend an enterprise

``suspended_at`` set means every mutation of the enterprise answers SUSPENDED
with ``suspended_reason``, and its queued and scheduled messages wait (in
their states) until resumeEnterprise clears it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import koomsg.core.db

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enterprise") as batch:
        batch.add_column(sa.Column(
                "suspended_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True
            ))
        batch.add_column(sa.Column("suspended_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enterprise") as batch:
        batch.drop_column("suspended_reason")
        batch.drop_column("suspended_at")
