"""Three workers racing the monthly pay-per-use cap never charge more than it.

Each worker reserves small batches and settles them in its own transactions,
as delivery workers do, so settlements commit while other workers reserve.
The cap check and the reservation must be one locked step for the count to
hold; before it was, a settle committing between reading the ledger and
reading the held reservations let a batch slip past the cap.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import func, select

from koomsg.core.billing import service as billing
from koomsg.core.billing.models import LedgerEntry
from koomsg.core.ids import new_id
from koomsg.core.tenancy.models import Enterprise
from koomsg.runtime import Runtime

CAP = 90
WORKERS = 3


async def _worker(runtime: Runtime, enterprise_id: str, seed: int) -> int:
    rng = random.Random(seed)
    refused_in_a_row = 0
    charged = 0
    while refused_in_a_row < 3:
        batch = [new_id("msg") for _ in range(rng.randint(1, 6))]
        async with runtime.db.transaction() as session:
            allocation = await billing.reserve(
                session,
                enterprise_id=enterprise_id,
                message_ids=batch,
                unit_price_cents=2,
                currency="CNY",
            )
        refused_in_a_row = refused_in_a_row + 1 if not allocation.allowed else 0
        await asyncio.sleep(rng.random() / 200)  # the batch is "being sent"
        # Most messages reach the transport; a few fail before it and are released.
        handed = {m for m in allocation.allowed if rng.random() < 0.9}
        async with runtime.db.transaction() as session:
            await billing.settle(session, reservation_id=allocation.reservation_id, charge=handed)
        charged += len(handed)
    return charged


@pytest.mark.parametrize("round", range(3))  # a race: several rounds make a slip likelier seen
async def test_three_workers_never_spend_more_than_the_cap(runtime: Runtime, round: int) -> None:
    async with runtime.db.transaction() as session:
        enterprise = Enterprise(
            name="Capped",
            real_name_verified=True,
            service_enabled=True,
            monthly_pay_per_use_cap=CAP,
        )
        session.add(enterprise)
        await session.flush()
    charged = await asyncio.gather(
        *(_worker(runtime, enterprise.id, round * WORKERS + seed) for seed in range(WORKERS))
    )
    async with runtime.db.session() as session:
        in_ledger = (
            await session.execute(
                select(func.count()).where(
                    LedgerEntry.enterprise_id == enterprise.id,  # type: ignore[arg-type]
                    LedgerEntry.package_id.is_(None),  # type: ignore[union-attr]
                )
            )
        ).scalar_one()
    assert in_ledger == sum(charged)
    # Workers stop only after being refused: the cap was reached, and never passed.
    assert in_ledger == CAP
