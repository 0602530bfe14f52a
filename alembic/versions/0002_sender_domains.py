"""sender domains, DKIM keys and sender addresses

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import koomsg.core.db
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sender_domain",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("last_verified_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_check_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enterprise_id", "name"),
    )
    op.create_index("ix_sender_domain_enterprise_id", "sender_domain", ["enterprise_id"])
    op.create_index("ix_sender_domain_next_check_at", "sender_domain", ["next_check_at"])

    op.create_table(
        "dkim_key",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("domain_id", sa.String(length=40), nullable=False),
        sa.Column("selector", sa.String(length=63), nullable=False),
        sa.Column("private_key_encrypted", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["domain_id"], ["sender_domain.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain_id", "selector"),
    )
    op.create_index("ix_dkim_key_domain_id", "dkim_key", ["domain_id"])

    op.create_table(
        "sender_address",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("domain_id", sa.String(length=40), nullable=False),
        sa.Column("prefix", sa.String(length=64), nullable=False),
        sa.Column("prefix_folded", sa.String(length=64), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=True),
        sa.Column("created_at", koomsg.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"]),
        sa.ForeignKeyConstraint(["domain_id"], ["sender_domain.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain_id", "prefix_folded"),
    )
    op.create_index("ix_sender_address_enterprise_id", "sender_address", ["enterprise_id"])
    op.create_index("ix_sender_address_domain_id", "sender_address", ["domain_id"])


def downgrade() -> None:
    op.drop_index("ix_sender_address_domain_id", table_name="sender_address")
    op.drop_index("ix_sender_address_enterprise_id", table_name="sender_address")
    op.drop_table("sender_address")
    op.drop_index("ix_dkim_key_domain_id", table_name="dkim_key")
    op.drop_table("dkim_key")
    op.drop_index("ix_sender_domain_next_check_at", table_name="sender_domain")
    op.drop_index("ix_sender_domain_enterprise_id", table_name="sender_domain")
    op.drop_table("sender_domain")
