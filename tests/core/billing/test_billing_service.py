"""Metering: spending order, expiry, pay-per-use, the cap, idempotence, the sweeper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from koomsg.core.billing import offers
from koomsg.core.billing import service as billing
from koomsg.core.billing.models import BillingMode, LedgerEntry, Package
from koomsg.core.billing.sweep import sweep_reservations
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.ids import new_id
from koomsg.core.principal import Principal, PrincipalKind
from koomsg.core.tenancy.models import Enterprise
from koomsg.runtime import Runtime

OPERATOR = Principal(PrincipalKind.OPERATOR, "op", "key")


async def setup(runtime: Runtime, cap: int | None = None) -> Principal:
    async with runtime.db.transaction() as session:
        row = Enterprise(
            name="Acme", real_name_verified=True, service_enabled=True, monthly_pay_per_use_cap=cap
        )
        session.add(row)
        await session.flush()
    return Principal(PrincipalKind.ENTERPRISE_ROOT, "Acme", "key", enterprise_id=row.id)


async def buy(
    runtime: Runtime,
    principal: Principal,
    mode: BillingMode,
    quota: int,
    *,
    when: datetime | None = None,
) -> Package:
    async with runtime.db.transaction() as session:
        offer = await offers.create_offer(
            session,
            principal=OPERATOR,
            name=f"{mode} {quota}",
            mode=mode,
            email_quota=quota,
            price_cents=100,
            currency="CNY",
        )
        [package] = await offers.purchase(
            session, principal=principal, offer_id=offer.id, quantity=1, now=when
        )
    return package


async def reserve(
    runtime: Runtime, principal: Principal, ids: list[str], **kw: Any
) -> billing.Allocation:
    assert principal.enterprise_id is not None
    async with runtime.db.transaction() as session:
        return await billing.reserve(
            session,
            enterprise_id=principal.enterprise_id,
            message_ids=ids,
            unit_price_cents=2,
            currency="CNY",
            **kw,
        )


async def settle(runtime: Runtime, reservation_id: str, charge: set[str]) -> bool | None:
    async with runtime.db.transaction() as session:
        return await billing.settle(session, reservation_id=reservation_id, charge=charge)


async def ledger(runtime: Runtime) -> list[LedgerEntry]:
    async with runtime.db.session() as session:
        return list((await session.exec(select(LedgerEntry))).scalars().all())  # type: ignore[call-overload]


async def packages(runtime: Runtime) -> dict[str, Package]:
    async with runtime.db.session() as session:
        return {p.id: p for p in (await session.exec(select(Package))).scalars().all()}  # type: ignore[call-overload]


def ids(n: int) -> list[str]:
    return [new_id("msg") for _ in range(n)]


async def test_packages_are_spent_soonest_expiry_first_then_packs_then_pay_per_use(
    runtime: Runtime,
) -> None:
    principal = await setup(runtime)
    now = datetime.now(UTC)
    pack = await buy(runtime, principal, BillingMode.PAY_PER_USE, 2)
    yearly = await buy(runtime, principal, BillingMode.YEARLY, 2, when=now - timedelta(days=1))
    monthly = await buy(runtime, principal, BillingMode.MONTHLY, 2, when=now - timedelta(days=1))
    assert (
        pack.expires_at is None and monthly.expires_at is not None and yearly.expires_at is not None
    )
    messages = ids(8)
    allocation = await reserve(runtime, principal, messages)
    assert allocation.allowed == messages and allocation.refused == []
    assert await settle(runtime, allocation.reservation_id, set(messages)) is True
    by_message = {e.message_id: e.package_id for e in await ledger(runtime)}
    assert [by_message[m] for m in messages] == [monthly.id] * 2 + [yearly.id] * 2 + [
        pack.id
    ] * 2 + [None] * 2
    assert all(
        p.emails_used == 2 and p.emails_reserved == 0 for p in (await packages(runtime)).values()
    )
    async with runtime.db.session() as session:
        view = await billing.overview(session, principal=principal)
    assert (view.emails_left, view.pay_per_use_this_month, view.packages) == (0, 2, [])


async def test_an_expired_monthly_package_is_not_used(runtime: Runtime) -> None:
    principal = await setup(runtime)
    expired = await buy(
        runtime, principal, BillingMode.MONTHLY, 10, when=datetime.now(UTC) - timedelta(days=40)
    )
    live = await buy(runtime, principal, BillingMode.YEARLY, 10)
    allocation = await reserve(runtime, principal, ids(3))
    await settle(runtime, allocation.reservation_id, set(allocation.allowed))
    assert {e.package_id for e in await ledger(runtime)} == {live.id}
    assert (await packages(runtime))[expired.id].emails_used == 0
    async with runtime.db.session() as session:
        view = await billing.overview(session, principal=principal)
    assert [p.id for p in view.packages] == [live.id] and view.emails_left == 7


async def test_the_cap_refuses_pay_per_use_beyond_it(runtime: Runtime) -> None:
    principal = await setup(runtime, cap=3)
    await buy(runtime, principal, BillingMode.MONTHLY, 2)
    messages = ids(7)
    allocation = await reserve(runtime, principal, messages)
    assert allocation.allowed == messages[:5] and allocation.refused == messages[5:]
    # Held pay-per-use counts against the cap before it is settled.
    assert (await reserve(runtime, principal, ids(1))).allowed == []
    await settle(runtime, allocation.reservation_id, set(messages[:4]))  # one not handed over
    entries = await ledger(runtime)
    assert sum(e.package_id is None for e in entries) == 2
    assert all(e.unit_price_cents == 2 for e in entries if e.package_id is None)
    assert len((await reserve(runtime, principal, ids(2))).allowed) == 1


async def test_a_retried_batch_is_charged_once(runtime: Runtime) -> None:
    principal = await setup(runtime)
    package = await buy(runtime, principal, BillingMode.MONTHLY, 10)
    messages = ids(3)
    first = await reserve(runtime, principal, messages)
    assert await settle(runtime, first.reservation_id, set(messages)) is True
    assert await settle(runtime, first.reservation_id, set(messages)) is True  # again: no-op
    second = await reserve(runtime, principal, messages)  # the batch retried
    assert second.allowed == messages
    await settle(runtime, second.reservation_id, set(messages))
    # Two open reservations for the same messages (a worker presumed dead) charge once too.
    third, fourth = (
        await reserve(runtime, principal, ["msg_x"]),
        await reserve(runtime, principal, ["msg_x"]),
    )
    await settle(runtime, third.reservation_id, {"msg_x"})
    await settle(runtime, fourth.reservation_id, {"msg_x"})
    assert len(await ledger(runtime)) == 4
    stored = (await packages(runtime))[package.id]
    assert (stored.emails_used, stored.emails_reserved) == (4, 0)
    assert await settle(runtime, "rsv_unknown", set()) is None


async def test_the_sweeper_settles_what_a_crash_left_open(runtime: Runtime) -> None:
    principal = await setup(runtime)
    package = await buy(runtime, principal, BillingMode.MONTHLY, 10)
    assert principal.enterprise_id is not None
    long_ago = datetime.now(UTC) - timedelta(seconds=runtime.settings.lease_seconds + 120)
    statuses = [
        MessageStatus.DELIVERED,
        MessageStatus.FAILED,
        MessageStatus.TO_SEND,
        MessageStatus.FAILED,
    ]
    attempts = [1, 1, 1, 0]
    rows = [
        {
            "id": new_id("msg"),
            "enterprise_id": principal.enterprise_id,
            "template_id": "tpl",
            "template_name": "T",
            "sender_address_id": "adr",
            "sender": "a@example.com",
            "recipient": "b@example.com",
            "subject": "s",
            "status": str(status),
            "attempts": n,
            "send_method": "API",
            "created_at": long_ago,
            "open_count": 0,
            "click_count": 0,
        }
        for status, n in zip(statuses, attempts, strict=True)
    ]
    async with runtime.db.transaction() as session:
        await session.execute(insert(Message.__table__), rows)  # type: ignore[attr-defined]
    messages = [r["id"] for r in rows]
    allocation = await reserve(
        runtime, principal, messages, now=long_ago
    )  # ... then the worker died
    fresh = await reserve(runtime, principal, ids(1))  # a batch in flight right now: left alone
    assert (await packages(runtime))[package.id].emails_reserved == 5
    assert await sweep_reservations(runtime.delivery) == 1
    assert await sweep_reservations(runtime.delivery) == 0
    assert {e.message_id for e in await ledger(runtime)} == set(messages[:2])
    stored = (await packages(runtime))[package.id]
    assert (stored.emails_used, stored.emails_reserved) == (2, 1)
    async with runtime.db.session() as session:
        open_ = await session.execute(
            select(func.count()).where(billing.RESERVATION.c.settled_at.is_(None))
        )
        assert open_.scalar_one() == 1
    assert allocation.reservation_id != fresh.reservation_id


async def test_settled_reservations_are_forgotten_but_the_ledger_stays(runtime: Runtime) -> None:
    principal = await setup(runtime)
    allocation = await reserve(runtime, principal, ids(2))
    await settle(runtime, allocation.reservation_id, set(allocation.allowed))
    async with runtime.db.transaction() as session:
        assert (
            await billing.forget_settled(session, before=datetime.now(UTC) - timedelta(days=1)) == 0
        )
        assert (
            await billing.forget_settled(session, before=datetime.now(UTC) + timedelta(seconds=1))
            == 1
        )
    assert len(await ledger(runtime)) == 2
