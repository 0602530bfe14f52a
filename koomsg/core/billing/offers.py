"""Package offers (operators), quotes and purchases (enterprises).

Purchases are final: there is no refund, cancellation or change of a
package, by design (the hosted service's rule), so nothing here edits one.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.billing.models import BillingMode, Package, PackageOffer, PurchaseKey
from koomsg.core.clock import utcnow
from koomsg.core.errors import BadInput, Conflict, NotFound, PreconditionFailed
from koomsg.core.idempotency import IDEMPOTENCY_WINDOW, clean_key
from koomsg.core.ids import new_id
from koomsg.core.principal import Principal
from koomsg.core.tenancy.ownership import could_name_a_row, owned

MAX_QUANTITY = 100
_CURRENCY = re.compile(r"[A-Z]{3}")


def clean_currency(currency: str, field: str = "currency") -> str:
    if not _CURRENCY.fullmatch(currency):
        raise BadInput(field, "a currency is a 3-letter ISO 4217 code in capitals, such as CNY")
    return currency


async def create_offer(
    session: AsyncSession,
    *,
    principal: Principal,
    name: str,
    mode: BillingMode,
    email_quota: int,
    price_cents: int,
    currency: str,
) -> PackageOffer:
    name = name.strip()
    if not 1 <= len(name) <= 128 or any(ord(ch) < 32 for ch in name):
        raise BadInput("name", "an offer name has 1 to 128 characters, no control characters")
    if email_quota <= 0:
        raise BadInput("emailQuota", "an offer includes at least one email")
    if price_cents < 0:
        raise BadInput("priceCents", "a price cannot be negative")
    offer = PackageOffer(
        name=name,
        mode=mode,
        email_quota=email_quota,
        price_cents=price_cents,
        currency=clean_currency(currency),
    )
    session.add(offer)
    await session.flush()
    return offer


async def get_offer(
    session: AsyncSession, *, offer_id: str, field: str = "offerId", on_sale: bool = False
) -> PackageOffer:
    named = could_name_a_row(PackageOffer, offer_id)
    offer = await session.get(PackageOffer, offer_id) if named else None
    if offer is None or (on_sale and offer.retired_at is not None):
        raise NotFound("no such package offer", field=field)
    return offer


async def retire_offer(
    session: AsyncSession, *, principal: Principal, offer_id: str
) -> PackageOffer:
    offer = await get_offer(session, offer_id=offer_id, field="id")
    if offer.retired_at is None:
        offer.retired_at = utcnow()
        session.add(offer)
        await session.flush()
    return offer


async def list_offers(session: AsyncSession, *, principal: Principal) -> list[PackageOffer]:
    query = select(PackageOffer).where(col(PackageOffer.retired_at).is_(None))
    return list((await session.exec(query.order_by(col(PackageOffer.id)))).all())


def _check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise BadInput("quantity", f"buy 1 to {MAX_QUANTITY} packages at once")


async def _offer_on_sale(session: AsyncSession, offer_id: str) -> PackageOffer:
    offer = await get_offer(session, offer_id=offer_id)
    if offer.retired_at is not None:
        raise PreconditionFailed("this package offer is no longer sold", field="offerId")
    return offer


async def quote(
    session: AsyncSession, *, principal: Principal, offer_id: str, quantity: int
) -> tuple[PackageOffer, int]:
    """The price calculator: (offer, total in cents) for ``quantity`` packages."""
    principal.require_enterprise()
    _check_quantity(quantity)
    offer = await _offer_on_sale(session, offer_id)
    return offer, offer.price_cents * quantity


def add_months(moment: datetime, months: int) -> datetime:
    """Same day and time ``months`` later, on the month's last day when it is shorter."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def expiry(mode: BillingMode, purchased_at: datetime) -> datetime | None:
    if mode is BillingMode.MONTHLY:
        return add_months(purchased_at, 1)
    if mode is BillingMode.YEARLY:
        return add_months(purchased_at, 12)
    return None  # pay-per-use packs keep their emails until spent


async def purchase(
    session: AsyncSession,
    *,
    principal: Principal,
    offer_id: str,
    quantity: int,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> list[Package]:
    """Buy ``quantity`` packages. With an idempotency key, a retry with the same key and
    arguments returns the packages of the first call and buys nothing more."""
    enterprise_id = principal.require_enterprise()
    key = clean_key(idempotency_key)
    _check_quantity(quantity)
    now = now or utcnow()
    if key is not None:
        first = await _replay(session, enterprise_id, key, offer_id, quantity, now)
        if first is not None:
            return first
    offer = await _offer_on_sale(session, offer_id)
    package_ids = [new_id("pkg") for _ in range(quantity)]
    if key is not None:
        # The key is claimed before anything is bought: of two concurrent retries, the
        # second waits on the key's unique index and then answers the first one's packages.
        claim = PurchaseKey(
            enterprise_id=enterprise_id,
            key=key,
            offer_id=offer_id,
            quantity=quantity,
            package_ids=package_ids,
            created_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(claim)
                await session.flush()
        except IntegrityError:
            winner = await _replay(session, enterprise_id, key, offer_id, quantity, now)
            if winner is None:  # the winner's row expired in between: cannot happen in practice
                raise Conflict("retry this purchase", field="idempotencyKey") from None
            return winner
    packages = [
        Package(
            id=package_id,
            enterprise_id=enterprise_id,
            offer_id=offer.id,
            mode=BillingMode(offer.mode),
            email_quota=offer.email_quota,
            price_cents=offer.price_cents,
            currency=offer.currency,
            purchased_at=now,
            expires_at=expiry(BillingMode(offer.mode), now),
        )
        for package_id in package_ids
    ]
    session.add_all(packages)
    await session.flush()
    return packages


async def _replay(
    session: AsyncSession,
    enterprise_id: str,
    key: str,
    offer_id: str,
    quantity: int,
    now: datetime,
) -> list[Package] | None:
    """The packages an earlier purchase with ``key`` bought, or None for a fresh key."""
    query = select(PurchaseKey).where(
        col(PurchaseKey.enterprise_id) == enterprise_id, col(PurchaseKey.key) == key
    )
    entry = (await session.exec(query)).first()
    if entry is None:
        return None
    if entry.created_at <= now - IDEMPOTENCY_WINDOW:
        await session.delete(entry)  # the window has passed: the key is free again
        await session.flush()
        return None
    if entry.offer_id != offer_id or entry.quantity != quantity:
        raise Conflict(
            "this idempotency key was used for another purchase (other offer or quantity)",
            field="idempotencyKey",
        )
    bought = select(Package).where(
        col(Package.id).in_(entry.package_ids), col(Package.enterprise_id) == enterprise_id
    )
    by_id = {package.id: package for package in (await session.exec(bought)).all()}
    return [by_id[package_id] for package_id in entry.package_ids if package_id in by_id]


async def get_package(session: AsyncSession, *, principal: Principal, package_id: str) -> Package:
    return await owned(session, Package, package_id, principal=principal, message="no such package")
