"""Suspension: an operator stops an enterprise's writes and sending without losing anything.

A suspended enterprise's keys still authenticate and may read; every mutation
answers SUSPENDED with the operator's reason. Its queued and scheduled
messages keep their states (never sent, never failed, never billed): the
dispatcher, the workers' claim and the scheduler pass them over, and they go
out after resumeEnterprise as if nothing had happened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import BadInput, KoomsgError
from koomsg.core.principal import Principal
from koomsg.core.tenancy.models import Enterprise
from koomsg.core.tenancy.service import get_enterprise

MAX_REASON = 500


class Suspended(KoomsgError):
    code = "SUSPENDED"

    def __init__(self, reason: str) -> None:
        super().__init__(f"this enterprise is suspended: {reason}")
        self.reason = reason


def not_suspended(enterprise_id_column: Any) -> Any:
    """A WHERE clause keeping rows whose enterprise is not suspended (one rule, three callers:
    dispatch, the workers' claim, the scheduler)."""
    suspended = select(col(Enterprise.id)).where(col(Enterprise.suspended_at).is_not(None))
    return enterprise_id_column.not_in(suspended.scalar_subquery())


async def ensure_not_suspended(session: AsyncSession, principal: Principal) -> None:
    """SUSPENDED for an enterprise's key (root or IAM user) while its enterprise is suspended;
    operators are never suspended."""
    if principal.enterprise_id is None:
        return
    reason = (
        await session.execute(
            select(col(Enterprise.suspended_reason)).where(
                col(Enterprise.id) == principal.enterprise_id,
                col(Enterprise.suspended_at).is_not(None),
            )
        )
    ).scalar_one_or_none()
    if reason is not None:
        raise Suspended(reason)


async def suspend_enterprise(
    session: AsyncSession, *, enterprise_id: str, reason: str, now: datetime
) -> Enterprise:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON or any(ord(c) < 32 for c in reason):
        raise BadInput("reason", f"a reason has 1 to {MAX_REASON} characters on one line")
    row = await get_enterprise(session, enterprise_id=enterprise_id)
    # Suspending again only updates the reason; the first time stays.
    row.suspended_at = row.suspended_at or now
    row.suspended_reason = reason
    session.add(row)
    await session.flush()
    return row


async def resume_enterprise(session: AsyncSession, *, enterprise_id: str) -> Enterprise:
    row = await get_enterprise(session, enterprise_id=enterprise_id)
    row.suspended_at = None
    row.suspended_reason = None
    session.add(row)
    await session.flush()
    return row
