"""Access key lifecycle: when a key was last used

``access_key.last_used_at`` lets an administrator see which keys are still in
use before revoking one (rotation). It is written off the request path, at
most once a minute per key. Revocation already had ``revoked_at``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import koomsg.core.db
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("access_key", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_used_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("access_key", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
