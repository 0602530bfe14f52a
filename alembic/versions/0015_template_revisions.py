"""Template revisions: every edit is a new revision; sends use the approved one

An edit of an approved template of a SENSITIVE enterprise used to put the
template back under review while queued and API messages went out with the
unreviewed text. Each template's current content becomes its revision 1
(approved if the template was), tasks say which revision they snapshotted,
messages which one they are built from.

Revision ID: 0015
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import koomsg.core.db
from alembic import op

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "template_revision",
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("body_type", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("support_unsubscribe", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("review_comment", sa.String(length=1024), nullable=True),
        sa.Column("reviewed_by", sa.String(length=128), nullable=True),
        sa.Column("reviewed_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["template_id"], ["template.id"]),
        sa.PrimaryKeyConstraint("template_id", "revision"),
    )
    op.create_index("ix_template_revision_enterprise_id", "template_revision", ["enterprise_id"])
    with op.batch_alter_table("template") as batch:
        batch.add_column(
            sa.Column("revision", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(sa.Column("approved_revision", sa.Integer(), nullable=True))
    with op.batch_alter_table("template_review") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=True))
    with op.batch_alter_table("sending_task") as batch:
        batch.add_column(
            sa.Column(
                "template_revision", sa.Integer(), nullable=False, server_default=sa.text("1")
            )
        )
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("template_revision", sa.Integer(), nullable=True))
    # Today's content of every template is its revision 1, reviewed as the template was.
    op.execute(
        "INSERT INTO template_revision (template_id, revision, enterprise_id, body_type, body, "
        "params, support_unsubscribe, status, review_comment, reviewed_by, reviewed_at, "
        "created_at) SELECT id, 1, enterprise_id, body_type, body, params, "
        "support_unsubscribe, status, review_comment, reviewed_by, reviewed_at, updated_at "
        "FROM template"
    )
    op.execute("UPDATE template SET approved_revision = 1 WHERE status = 'APPROVED'")


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("template_revision")
    with op.batch_alter_table("sending_task") as batch:
        batch.drop_column("template_revision")
    with op.batch_alter_table("template_review") as batch:
        batch.drop_column("revision")
    with op.batch_alter_table("template") as batch:
        batch.drop_column("approved_revision")
        batch.drop_column("revision")
    op.drop_index("ix_template_revision_enterprise_id", table_name="template_revision")
    op.drop_table("template_revision")
