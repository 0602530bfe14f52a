"""The billing sweeper never settles a reservation whose messages are still leased, and
settling charges exactly the delivered messages once, however often it runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update

from koomsg.core.billing.models import BillingMode
from koomsg.core.billing.sweep import sweep_reservations
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.ids import new_id
from koomsg.runtime import Runtime
from tests.core.billing.test_billing_service import buy, ledger, packages, reserve, settle, setup

MESSAGE = Message.__table__  # type: ignore[attr-defined]


async def _messages(runtime: Runtime, enterprise_id: str, statuses: list[str]) -> list[str]:
    rows = [
        {
            "id": new_id("msg"),
            "enterprise_id": enterprise_id,
            "template_id": "tpl",
            "template_name": "T",
            "sender_address_id": "adr",
            "sender": "a@example.com",
            "recipient": f"b{i}@example.com",
            "subject": "s",
            "status": status,
            "attempts": 1,
            "send_method": "API",
            "open_count": 0,
            "click_count": 0,
        }
        for i, status in enumerate(statuses)
    ]
    async with runtime.db.transaction() as session:
        await session.execute(insert(MESSAGE), rows)
    return [r["id"] for r in rows]


async def test_a_reservation_with_leased_rows_waits_and_is_then_charged_once(
    runtime: Runtime,
) -> None:
    principal = await setup(runtime)
    package = await buy(runtime, principal, BillingMode.MONTHLY, 10)
    assert principal.enterprise_id is not None
    ids = await _messages(runtime, principal.enterprise_id, ["DELIVERED", "SENDING", "SENDING"])
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    allocation = await reserve(runtime, principal, ids, now=long_ago)

    # A tarpit holds two of them, their lease renewed: however old, the reservation waits.
    assert await sweep_reservations(runtime.delivery) == 0
    assert await ledger(runtime) == []
    assert (await packages(runtime))[package.id].emails_reserved == 3

    async with runtime.db.transaction() as session:
        await session.execute(
            update(MESSAGE).where(MESSAGE.c.id == ids[1]).values(status=MessageStatus.DELIVERED)
        )
        stopped = "could not be sent: the worker stopped 5 times while sending it"
        await session.execute(
            update(MESSAGE)
            .where(MESSAGE.c.id == ids[2])
            .values(status=MessageStatus.FAILED, failure_reason=stopped)
        )
    assert await sweep_reservations(runtime.delivery) == 1
    assert await sweep_reservations(runtime.delivery) == 0
    # The batch's own settle arriving late changes nothing: settled once, charged once.
    assert await settle(runtime, allocation.reservation_id, set(ids)) is True
    assert sorted(e.message_id for e in await ledger(runtime)) == sorted(ids[:2])
    stored = (await packages(runtime))[package.id]
    assert (stored.emails_used, stored.emails_reserved) == (2, 0)
