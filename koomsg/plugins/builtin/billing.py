"""Built-in billing: packages first (soonest expiry first), then pay-per-use up to the cap.

Reserving runs in its own transaction (``context`` is the worker's
``DeliveryContext``: ``.db``, ``.settings``); settling runs in the caller's
transaction, once the batch's outcomes are written (``context`` is that
AsyncSession); the ledger's unique message id makes it idempotent. A partner replaces this module by implementing both
hooks (theirs are called first) for an external billing system.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from koomsg.core.billing import service
from koomsg.plugins import hookimpl
from koomsg.plugins.types import BillingReservation, EnterpriseInfo, MessageOutcome

if TYPE_CHECKING:
    from koomsg.core.delivery.context import DeliveryContext

RESERVATION_PREFIX = "rsv_"


@hookimpl
async def koomsg_billing_reserve(
    enterprise: EnterpriseInfo, count: int, message_ids: Sequence[str], context: DeliveryContext
) -> BillingReservation:
    settings = context.settings
    async with context.db.transaction() as session:
        allocation = await service.reserve(
            session,
            enterprise_id=enterprise.id,
            message_ids=list(message_ids),
            unit_price_cents=settings.pay_per_use_price_cents,
            currency=settings.currency,
        )
    return BillingReservation(
        allowed=bool(allocation.allowed),
        reservation_id=allocation.reservation_id,
        reason=service.QUOTA_EXCEEDED if allocation.refused else None,
        allowed_message_ids=allocation.allowed,
    )


@hookimpl
async def koomsg_billing_settle(
    enterprise: EnterpriseInfo,
    reservation: BillingReservation,
    outcomes: Sequence[MessageOutcome],
    context: Any,
) -> bool | None:
    reservation_id = reservation.reservation_id
    if not reservation_id or not reservation_id.startswith(RESERVATION_PREFIX):
        return None  # not one of ours: another plugin reserved it
    return await service.settle(
        context,
        reservation_id=reservation_id,
        charge={o.message_id for o in outcomes if o.handed_to_transport},
    )
