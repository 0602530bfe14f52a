"""Count claims without an outcome and record who holds a lease

A message whose worker dies while sending it (a poison message) was claimed
again forever; ``claims`` lets the sweeper fail it after
``KOOMSG_MAX_CLAIMS``. ``lease_owner`` names the process holding a lease, so
a restarted embedded server releases its dead predecessor's rows at once.

Revision ID: 0016
Revises: 0011
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claims", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("claims")
        batch.drop_column("lease_owner")
