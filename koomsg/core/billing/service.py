"""Metering: reserve emails before a batch is sent, settle them once outcomes are known.

Spending order: live packages first, the one expiring soonest first and
non-expiring pay-per-use packs last, then pay-per-use, up to the
enterprise's monthly cap. Messages beyond it are refused ("quota exceeded").

Reservations of one enterprise are serialised (the reservation INSERT takes
SQLite's write lock; PostgreSQL locks the enterprise row), so two workers
never hand out the same package email. Under a monthly cap, the cap check
counts charged and held emails in one statement under that lock, and
settling takes the same lock, so concurrent workers never overspend the cap.
Settlement runs inside the caller's
transaction, once the batch's outcomes are written (or, after a crash, from
the billing sweeper); the ledger's unique message id makes it idempotent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.billing.models import LedgerEntry, Package, Reservation, ReservationItem
from koomsg.core.clock import utcnow
from koomsg.core.errors import BadInput
from koomsg.core.principal import Principal
from koomsg.core.tenancy.models import Enterprise
from koomsg.core.tenancy.service import get_enterprise

QUOTA_EXCEEDED = "quota exceeded"
LEDGER = LedgerEntry.__table__  # type: ignore[attr-defined]
PACKAGE = Package.__table__  # type: ignore[attr-defined]
RESERVATION = Reservation.__table__  # type: ignore[attr-defined]
ITEM = ReservationItem.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Allocation:
    reservation_id: str
    allowed: list[str]
    refused: list[str]


def insert_or_ignore(session: AsyncSession, table: Any) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing`` on both SQLite and PostgreSQL."""
    from sqlalchemy.dialects import postgresql, sqlite

    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        return postgresql.insert(table)
    return sqlite.insert(table)


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _live(enterprise_id: str, now: datetime) -> Any:
    return select(Package).where(
        col(Package.enterprise_id) == enterprise_id,
        or_(col(Package.expires_at).is_(None), col(Package.expires_at) > now),
    )


async def live_packages(
    session: AsyncSession, *, enterprise_id: str, now: datetime
) -> list[Package]:
    """Unexpired packages with emails left, in spending order."""
    left = col(Package.email_quota) > col(Package.emails_used) + col(Package.emails_reserved)
    query = _live(enterprise_id, now).where(left)
    query = query.order_by(
        col(Package.expires_at).is_(None),
        col(Package.expires_at),
        col(Package.purchased_at),
        Package.id,
    )
    return list((await session.execute(query)).scalars().all())


def _pay_per_use_charged(enterprise_id: str, now: datetime) -> Any:
    return select(func.count()).where(
        LEDGER.c.enterprise_id == enterprise_id,
        LEDGER.c.package_id.is_(None),
        LEDGER.c.charged_at >= month_start(now),
    )


async def pay_per_use_this_month(
    session: AsyncSession, *, enterprise_id: str, now: datetime
) -> int:
    return int((await session.execute(_pay_per_use_charged(enterprise_id, now))).scalar_one())


async def _pay_per_use_spent_or_held(
    session: AsyncSession, enterprise_id: str, now: datetime
) -> int:
    """Pay-per-use emails charged this month plus those held by open reservations, in ONE
    statement: a settle moves emails from held to charged, and two statements could see
    one before it commits and the other after, missing them in both (one snapshot cannot)."""
    held = (
        select(func.count())
        .select_from(ITEM.join(RESERVATION, RESERVATION.c.id == ITEM.c.reservation_id))
        .where(
            RESERVATION.c.enterprise_id == enterprise_id,
            RESERVATION.c.settled_at.is_(None),
            ITEM.c.package_id.is_(None),
            ITEM.c.prepaid.is_(False),
        )
    )
    query = select(
        _pay_per_use_charged(enterprise_id, now).scalar_subquery() + held.scalar_subquery()
    )
    return int((await session.execute(query)).scalar_one())


async def _lock_enterprise(session: AsyncSession, enterprise_id: str) -> int | None:
    """Serialise reserving and settling per enterprise on PostgreSQL (SQLite has one
    writer anyway): both touch several package rows, and a fixed first lock rules out
    deadlocks between them. Returns the monthly pay-per-use cap."""
    lock = select(col(Enterprise.monthly_pay_per_use_cap)).where(
        col(Enterprise.id) == enterprise_id
    )
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        # NO KEY UPDATE, not UPDATE: the caller may already hold a KEY SHARE lock on this
        # row (any insert referencing the enterprise takes one, e.g. reserve()'s
        # Reservation row). FOR UPDATE conflicts with KEY SHARE, so two concurrent
        # batches each waited for the other's key share: "deadlock detected" on every
        # busy worker (seen in tests/e2e/test_crash.py). NO KEY UPDATE still serialises
        # reserve/settle with each other but ignores key shares.
        lock = lock.with_for_update(key_share=True)  # renders FOR NO KEY UPDATE
    return (await session.execute(lock)).scalar_one()  # type: ignore[no-any-return]


async def _cap_of(session: AsyncSession, enterprise_id: str) -> int | None:
    query = select(col(Enterprise.monthly_pay_per_use_cap)).where(
        col(Enterprise.id) == enterprise_id
    )
    return (await session.execute(query)).scalar_one_or_none()  # type: ignore[no-any-return]


async def _needs_allocation_lock(session: AsyncSession, enterprise_id: str, now: datetime) -> bool:
    """Whether reserving must allocate package quota or respect a cap (both need the lock)."""
    if await _cap_of(session, enterprise_id) is not None:
        return True
    packages = await live_packages(session, enterprise_id=enterprise_id, now=now)
    return any(p.email_quota - p.emails_used - p.emails_reserved > 0 for p in packages)


async def _already_charged(session: AsyncSession, message_ids: Sequence[str]) -> set[str]:
    query = select(LEDGER.c.message_id).where(LEDGER.c.message_id.in_(list(message_ids)))
    return set((await session.execute(query)).scalars().all())


async def reserve(
    session: AsyncSession,
    *,
    enterprise_id: str,
    message_ids: Sequence[str],
    unit_price_cents: int,
    currency: str,
    now: datetime | None = None,
) -> Allocation:
    now = now or utcnow()
    postgres = session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
    # The per-enterprise lock only protects allocating package quota and the cap. An
    # enterprise with neither (plain pay-per-use, the default) needs no lock at all, and
    # taking one would serialise every batch of a big task behind it.
    contended = await _needs_allocation_lock(session, enterprise_id, now)
    # On PostgreSQL the enterprise row is locked before the INSERT: the reservation's
    # foreign key takes a KEY SHARE lock on it, and two batches each holding one would
    # deadlock waiting for the other's FOR UPDATE. On SQLite the INSERT comes first so the
    # transaction takes the write lock before it reads anything.
    cap = await _lock_enterprise(session, enterprise_id) if postgres and contended else None
    reservation = Reservation(
        enterprise_id=enterprise_id,
        unit_price_cents=unit_price_cents,
        currency=currency,
        created_at=now,
    )
    session.add(reservation)
    await session.flush()
    if contended and not postgres:
        cap = await _lock_enterprise(session, enterprise_id)
    prepaid = await _already_charged(session, message_ids)
    items = [
        {"message_id": m, "package_id": None, "prepaid": True} for m in message_ids if m in prepaid
    ]
    waiting = [m for m in message_ids if m not in prepaid]
    packages = (
        await live_packages(session, enterprise_id=enterprise_id, now=now) if contended else []
    )
    for package in packages:
        take = min(
            len(waiting), package.email_quota - package.emails_used - package.emails_reserved
        )
        if take <= 0:
            continue
        items += [
            {"message_id": m, "package_id": package.id, "prepaid": False} for m in waiting[:take]
        ]
        waiting = waiting[take:]
        await session.execute(
            update(PACKAGE)
            .where(PACKAGE.c.id == package.id)
            .values(emails_reserved=PACKAGE.c.emails_reserved + take)
        )
    if cap is not None and waiting:
        room = max(0, cap - await _pay_per_use_spent_or_held(session, enterprise_id, now))
        waiting, refused = waiting[:room], waiting[room:]
    else:
        refused = []
    items += [{"message_id": m, "package_id": None, "prepaid": False} for m in waiting]
    if items:
        await session.execute(
            ITEM.insert(), [{"reservation_id": reservation.id, **item} for item in items]
        )
    allowed = {item["message_id"] for item in items}
    return Allocation(reservation.id, [m for m in message_ids if m in allowed], refused)


async def settle(
    session: AsyncSession,
    *,
    reservation_id: str,
    charge: set[str],
    now: datetime | None = None,
) -> bool | None:
    """Charge the reserved messages in ``charge`` (those handed to a transport), release
    the rest. None for an unknown reservation; settling twice changes nothing."""
    now = now or utcnow()
    claimed = (
        await session.execute(
            update(RESERVATION)
            .where(RESERVATION.c.id == reservation_id, RESERVATION.c.settled_at.is_(None))
            .values(settled_at=now)
            .returning(
                RESERVATION.c.enterprise_id, RESERVATION.c.unit_price_cents, RESERVATION.c.currency
            )
        )
    ).first()
    if claimed is None:
        exists = await session.get(Reservation, reservation_id)
        return None if exists is None else True
    enterprise_id, unit_price, currency = claimed
    if session.bind.dialect.name == "postgresql" and await _cap_of(session, enterprise_id):  # type: ignore[union-attr]
        # Settling moves pay-per-use emails from held to charged: under a cap, do it under
        # the enterprise's lock as reserving is, so a reservation checking the cap never
        # runs beside it (SQLite: the UPDATE above already took the one write lock).
        # Without a cap there is nothing to protect, and no batch waits on another.
        await _lock_enterprise(session, enterprise_id)
    items = (
        await session.execute(select(ITEM).where(ITEM.c.reservation_id == reservation_id))
    ).all()
    rows = [
        {
            "message_id": item.message_id,
            "enterprise_id": enterprise_id,
            "package_id": item.package_id,
            "unit_price_cents": 0 if item.package_id else unit_price,
            "currency": currency,
            "charged_at": now,
        }
        for item in items
        if item.message_id in charge and not item.prepaid
    ]
    charged = await _write_ledger(session, rows)
    held = Counter(item.package_id for item in items if item.package_id and not item.prepaid)
    used = Counter(
        item.package_id for item in items if item.package_id and item.message_id in charged
    )
    # Relative updates need no enterprise lock; a fixed order keeps two settles of the same
    # packages from deadlocking on each other's row locks.
    for package_id, count in sorted(held.items()):
        await session.execute(
            update(PACKAGE)
            .where(PACKAGE.c.id == package_id)
            .values(
                emails_reserved=PACKAGE.c.emails_reserved - count,
                emails_used=PACKAGE.c.emails_used + used[package_id],
            )
        )
    return True


async def _write_ledger(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert entries, skipping messages charged before; returns the ids charged now."""
    charged: set[str] = set()
    for start in range(0, len(rows), 500):
        statement = (
            insert_or_ignore(session, LEDGER)
            .values(rows[start : start + 500])
            .on_conflict_do_nothing(index_elements=["message_id"])
            .returning(LEDGER.c.message_id)
        )
        charged.update((await session.execute(statement)).scalars().all())
    return charged


async def forget_settled(session: AsyncSession, *, before: datetime, limit: int = 1000) -> int:
    """Delete up to ``limit`` reservations settled before ``before``, with their items: once
    settled, the ledger holds everything billing needs."""
    old = (
        select(RESERVATION.c.id)
        .where(RESERVATION.c.settled_at < before)
        .order_by(RESERVATION.c.settled_at)
        .limit(limit)
    )
    ids = list((await session.execute(old)).scalars().all())
    if ids:
        await session.execute(delete(ITEM).where(ITEM.c.reservation_id.in_(ids)))
        await session.execute(delete(RESERVATION).where(RESERVATION.c.id.in_(ids)))
    return len(ids)


async def set_pay_per_use_cap(
    session: AsyncSession, *, principal: Principal, cap: int | None
) -> Enterprise:
    if cap is not None and cap < 0:
        raise BadInput("cap", "a monthly pay-per-use cap is 0 or more emails; null removes it")
    enterprise = await get_enterprise(session, enterprise_id=principal.require_enterprise())
    enterprise.monthly_pay_per_use_cap = cap
    session.add(enterprise)
    await session.flush()
    return enterprise


@dataclass(frozen=True)
class Overview:
    packages: list[Package]
    emails_left: int
    pay_per_use_this_month: int
    pay_per_use_cap: int | None


async def overview(
    session: AsyncSession, *, principal: Principal, now: datetime | None = None
) -> Overview:
    enterprise = await get_enterprise(session, enterprise_id=principal.require_enterprise())
    now = now or utcnow()
    packages = await live_packages(session, enterprise_id=enterprise.id, now=now)
    return Overview(
        packages=packages,
        emails_left=sum(p.email_quota - p.emails_used - p.emails_reserved for p in packages),
        pay_per_use_this_month=await pay_per_use_this_month(
            session, enterprise_id=enterprise.id, now=now
        ),
        pay_per_use_cap=enterprise.monthly_pay_per_use_cap,
    )
