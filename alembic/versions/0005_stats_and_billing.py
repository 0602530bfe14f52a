"""hourly statistics aggregates and their watermark; package offers, packages, reservations, ledger

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import koomsg.core.db
from alembic import op

revision: str = "0005"
down_revision: str | tuple[str, ...] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = koomsg.core.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "stats_hourly",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("hour", UTC(timezone=True), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=True),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("sender_address_id", sa.String(length=40), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "to_send",
                "delivered",
                "failed",
                "rejected",
                "opened",
                "clicked",
                "unsubscribed",
            )
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_stats_hourly_enterprise_hour", "stats_hourly", ["enterprise_id", "hour"])
    op.create_index("ix_stats_hourly_hour", "stats_hourly", ["hour"])
    op.create_table(
        "stats_watermark",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", UTC(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "package_offer",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("email_quota", sa.Integer(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("retired_at", UTC(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "package",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("offer_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("email_quota", sa.Integer(), nullable=False),
        sa.Column("emails_used", sa.Integer(), nullable=False),
        sa.Column("emails_reserved", sa.Integer(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("purchased_at", UTC(timezone=True), nullable=False),
        sa.Column("expires_at", UTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"]),
        sa.ForeignKeyConstraint(["offer_id"], ["package_offer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_package_enterprise_expires", "package", ["enterprise_id", "expires_at"])
    op.create_table(
        "billing_reservation",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("settled_at", UTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_billing_reservation_open", "billing_reservation", ["settled_at", "created_at"]
    )
    op.create_table(
        "billing_reservation_item",
        sa.Column("reservation_id", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("package_id", sa.String(length=40), nullable=True),
        sa.Column("prepaid", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["reservation_id"], ["billing_reservation.id"]),
        sa.PrimaryKeyConstraint("reservation_id", "message_id"),
    )
    op.create_index(
        "ix_billing_reservation_item_message", "billing_reservation_item", ["message_id"]
    )
    op.create_table(
        "billing_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("enterprise_id", sa.String(length=40), nullable=False),
        sa.Column("package_id", sa.String(length=40), nullable=True),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("charged_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index(
        "ix_billing_ledger_enterprise_charged", "billing_ledger", ["enterprise_id", "charged_at"]
    )


def downgrade() -> None:
    op.drop_table("billing_ledger")
    op.drop_table("billing_reservation_item")
    op.drop_table("billing_reservation")
    op.drop_table("package")
    op.drop_table("package_offer")
    op.drop_table("stats_watermark")
    op.drop_table("stats_hourly")
