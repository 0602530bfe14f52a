"""The suppression list: who must never be sent to, and why."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import BadInput, NotFound
from koomsg.core.pagination import Page, paginate
from koomsg.core.principal import Principal
from koomsg.core.recipients.models import Suppression, SuppressionReason


def fold(address: str) -> str:
    return address.strip().lower()


async def suppressed_among(
    session: AsyncSession, *, enterprise_id: str, addresses: Iterable[str]
) -> set[str]:
    """The folded addresses of ``addresses`` that are on the enterprise's suppression list."""
    folded = sorted({fold(a) for a in addresses})
    found: set[str] = set()
    # Chunked: IN lists stay well under SQLite's variable limit.
    for start in range(0, len(folded), 500):
        chunk = folded[start : start + 500]
        stmt = select(Suppression.address).where(
            Suppression.enterprise_id == enterprise_id, col(Suppression.address).in_(chunk)
        )
        found.update((await session.exec(stmt)).all())
    return found


async def suppress(
    session: AsyncSession,
    *,
    enterprise_id: str,
    address: str,
    reason: SuppressionReason,
    detail: str | None = None,
    message_id: str | None = None,
) -> Suppression:
    """Add an address; adding one that is already listed keeps the first entry."""
    existing = (
        await session.exec(
            select(Suppression).where(
                Suppression.enterprise_id == enterprise_id, Suppression.address == fold(address)
            )
        )
    ).first()
    if existing is not None:
        return existing
    entry = Suppression(
        enterprise_id=enterprise_id,
        address=fold(address),
        reason=reason,
        detail=(detail or "")[:1024] or None,
        message_id=message_id,
    )
    try:
        async with session.begin_nested():
            session.add(entry)
            await session.flush()
    except IntegrityError:
        # Another worker listed it at the same moment: that entry stands.
        return (
            await session.exec(
                select(Suppression).where(
                    Suppression.enterprise_id == enterprise_id, Suppression.address == fold(address)
                )
            )
        ).one()
    return entry


async def add_manual(
    session: AsyncSession, *, principal: Principal, address: str, note: str | None
) -> Suppression:
    from koomsg.core.tasks.addresses import normalise_recipient

    normalised = normalise_recipient(address, field="address")
    return await suppress(
        session,
        enterprise_id=principal.require_enterprise(),
        address=normalised,
        reason=SuppressionReason.MANUAL,
        detail=note,
    )


async def remove(session: AsyncSession, *, principal: Principal, address: str) -> str:
    if "\x00" in address:
        # No stored address holds a NUL, and PostgreSQL would refuse the comparison.
        raise NotFound("this address is not on the suppression list", field="address")
    entry = (
        await session.exec(
            select(Suppression).where(
                Suppression.enterprise_id == principal.require_enterprise(),
                Suppression.address == fold(address),
            )
        )
    ).first()
    if entry is None:
        raise NotFound("this address is not on the suppression list", field="address")
    await session.delete(entry)
    await session.flush()
    return entry.address


async def list_suppressions(
    session: AsyncSession,
    *,
    principal: Principal,
    address: str | None,
    first: int | None,
    after: str | None,
) -> Page[Suppression]:
    stmt = select(Suppression).where(Suppression.enterprise_id == principal.require_enterprise())
    if address:
        if len(address) > 320:
            raise BadInput("address", "an address has at most 320 characters")
        stmt = stmt.where(col(Suppression.address).contains(fold(address)))
    return await paginate(session, stmt, Suppression.id, first=first, after=after)
