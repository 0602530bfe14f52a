"""Billing's periodic job: settle reservations a crashed worker left open, forget old ones."""

from __future__ import annotations

from datetime import timedelta

from koomsg.core.billing.service import forget_settled
from koomsg.core.billing.sweep import sweep_reservations
from koomsg.core.clock import utcnow
from koomsg.runtime import Runtime
from koomsg.worker.periodic import periodic

# Settled reservations are kept a day for troubleshooting; the ledger is kept for good.
KEEP_SETTLED = timedelta(days=1)


@periodic("billing-sweeper", lambda settings: settings.billing_sweep_interval_seconds)
async def billing_sweeper(runtime: Runtime) -> None:
    await sweep_reservations(runtime.delivery)
    for _ in range(20):
        async with runtime.db.transaction() as session:
            if await forget_settled(session, before=utcnow() - KEEP_SETTLED) < 1000:
                return
