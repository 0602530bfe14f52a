"""templates and their review log

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import koomsg.core.db
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "template",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("body_type", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("support_unsubscribe", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("review_comment", sa.String(length=1024), nullable=True),
        sa.Column("reviewed_by", sa.String(length=128), nullable=True),
        sa.Column("reviewed_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("copied_from", sa.String(length=80), nullable=True),
        sa.Column("created_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_template_enterprise_id", "template", ["enterprise_id"])
    op.create_index("ix_template_status", "template", ["status"])

    op.create_table(
        "template_review",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.String(length=1024), nullable=True),
        sa.Column("reviewer_kind", sa.String(length=16), nullable=False),
        sa.Column("reviewer", sa.String(length=128), nullable=False),
        sa.Column("created_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_template_review_template_id", "template_review", ["template_id"])
    op.create_index("ix_template_review_enterprise_id", "template_review", ["enterprise_id"])


def downgrade() -> None:
    op.drop_index("ix_template_review_enterprise_id", table_name="template_review")
    op.drop_index("ix_template_review_template_id", table_name="template_review")
    op.drop_table("template_review")
    op.drop_index("ix_template_status", table_name="template")
    op.drop_index("ix_template_enterprise_id", table_name="template")
    op.drop_table("template")
