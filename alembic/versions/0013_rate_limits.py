"""Rate limits: the operators' per-enterprise override and the shared bucket table

``enterprise.rate_limit_rps`` / ``rate_limit_burst`` (null: the
``KOOMSG_RATE_LIMIT_*`` defaults) size each enterprise's token bucket;
``rate_limit_bucket`` holds the buckets when ``KOOMSG_RATE_LIMIT_STORAGE`` is
``database`` (one row per bucket in use, its theoretical arrival time).

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enterprise") as batch:
        batch.add_column(sa.Column("rate_limit_rps", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rate_limit_burst", sa.Integer(), nullable=True))
    op.create_table(
        "rate_limit_bucket",
        sa.Column("key", sa.String(length=200), primary_key=True),
        sa.Column("tat", sa.Float(precision=53), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_limit_bucket")
    with op.batch_alter_table("enterprise") as batch:
        batch.drop_column("rate_limit_burst")
        batch.drop_column("rate_limit_rps")
