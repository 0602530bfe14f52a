"""Settling reservations a crash left open.

A worker that dies between reserving and settling leaves a reservation
holding quota. Once it is older than the delivery lease plus a margin and
none of its messages is SENDING any more (a batch slowed by a tarpit keeps
renewing its lease for as long as it takes, and settling before its outcomes
are written would release messages that then go out uncharged), its messages
are final or back in the queue, so the database knows what happened: a
message counts as handed to a transport when it is DELIVERED, or FAILED after
at least one attempt (not a poison message, whose workers died before any
answer). Those are charged (once: the ledger is unique by message), the rest
released; a message sent again later is charged by the reservation of that
later batch.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select

from koomsg.core.billing.models import Reservation, ReservationItem
from koomsg.core.clock import utcnow
from koomsg.core.delivery.context import DeliveryContext
from koomsg.core.delivery.models import Message, MessageStatus, is_stopped_reason
from koomsg.core.tenancy.models import Enterprise
from koomsg.plugins.manager import call_first
from koomsg.plugins.types import BillingReservation, EnterpriseInfo, MessageOutcome

RESERVATION = Reservation.__table__  # type: ignore[attr-defined]
ITEM = ReservationItem.__table__  # type: ignore[attr-defined]
MESSAGE = Message.__table__  # type: ignore[attr-defined]
MARGIN = timedelta(seconds=60)


def was_handed(status: str, attempts: int, reason: str | None = None) -> bool:
    if status == MessageStatus.DELIVERED:
        return True
    return status == MessageStatus.FAILED and attempts > 0 and not is_stopped_reason(reason)


def _still_leased() -> Any:
    """Whether a message of the reservation is still held by a worker (SENDING)."""
    return exists().where(
        ITEM.c.reservation_id == RESERVATION.c.id,
        MESSAGE.c.id == ITEM.c.message_id,
        MESSAGE.c.status == MessageStatus.SENDING,
    )


async def sweep_reservations(
    context: DeliveryContext, *, now: datetime | None = None, limit: int = 100
) -> int:
    """Settle stale reservations through the settle hook; returns how many were settled."""
    now = now or utcnow()
    stale_before = now - timedelta(seconds=context.settings.lease_seconds) - MARGIN
    async with context.db.session() as session:
        stale = (
            await session.execute(
                select(RESERVATION.c.id, RESERVATION.c.enterprise_id)
                .where(
                    RESERVATION.c.settled_at.is_(None),
                    RESERVATION.c.created_at < stale_before,
                    ~_still_leased(),
                )
                .order_by(RESERVATION.c.created_at)
                .limit(limit)
            )
        ).all()
    settled = 0
    for reservation_id, enterprise_id in stale:
        async with context.db.transaction() as session:
            enterprise = await session.get(Enterprise, enterprise_id)
            assert enterprise is not None
            rows = (
                await session.execute(
                    select(
                        ITEM.c.message_id,
                        MESSAGE.c.status,
                        MESSAGE.c.attempts,
                        MESSAGE.c.failure_reason,
                    )
                    .select_from(ITEM.outerjoin(MESSAGE, MESSAGE.c.id == ITEM.c.message_id))
                    .where(ITEM.c.reservation_id == reservation_id)
                )
            ).all()
            if any(status == MessageStatus.SENDING for _, status, _, _ in rows):
                continue  # claimed again since the query above: settle when it is done
            outcomes = [
                MessageOutcome(
                    m,
                    status is not None and was_handed(status, attempts or 0, reason),
                    str(status),
                )
                for m, status, attempts, reason in rows
            ]
            answer = await call_first(
                context.plugins,
                "koomsg_billing_settle",
                enterprise=EnterpriseInfo(
                    id=enterprise.id,
                    name=enterprise.name,
                    industry_class=str(enterprise.industry_class),
                    real_name_verified=enterprise.real_name_verified,
                ),
                reservation=BillingReservation(
                    allowed=True,
                    reservation_id=reservation_id,
                    allowed_message_ids=[m for m, _, _, _ in rows],
                ),
                outcomes=outcomes,
                context=session,
            )
            settled += int(bool(answer))
    return settled
