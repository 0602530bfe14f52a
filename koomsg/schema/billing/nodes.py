from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.billing import offers
from koomsg.core.principal import Principal
from koomsg.schema.billing.types import Package, PackageOffer
from koomsg.schema.node import register_node


async def _offer(session: AsyncSession, principal: Principal, ident: str) -> PackageOffer:
    return PackageOffer.from_row(await offers.get_offer(session, offer_id=ident, field="id"))


async def _package(session: AsyncSession, principal: Principal, ident: str) -> Package:
    return Package.from_row(
        await offers.get_package(session, principal=principal, package_id=ident)
    )


register_node("pko", "KooMessage:packageOffer:list", _offer)
register_node("pkg", "KooMessage:overview:get", _package)
