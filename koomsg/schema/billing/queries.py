from __future__ import annotations

import strawberry

from koomsg.core.billing import offers
from koomsg.core.billing import service as billing
from koomsg.schema.billing.types import Overview, PackageOffer, PriceQuote
from koomsg.schema.context import Info


@strawberry.type
class BillingQuery:
    @strawberry.field(description="Packages, emails left and this month's pay-per-use usage.")
    async def overview(self, info: Info) -> Overview:
        async with info.context.read("KooMessage:overview:get") as (session, principal):
            return Overview.from_core(await billing.overview(session, principal=principal))

    @strawberry.field(description="Package offers on sale.")
    async def package_offers(self, info: Info) -> list[PackageOffer]:
        async with info.context.read("KooMessage:packageOffer:list") as (session, principal):
            rows = await offers.list_offers(session, principal=principal)
        return [PackageOffer.from_row(row) for row in rows]

    @strawberry.field(
        description="The price calculator: the price of 1 to 100 packages of an offer."
    )
    async def price_quote(
        self, info: Info, offer_id: strawberry.ID, quantity: int = 1
    ) -> PriceQuote:
        async with info.context.read("KooMessage:package:quote") as (session, principal):
            offer, total = await offers.quote(
                session, principal=principal, offer_id=offer_id, quantity=quantity
            )
        return PriceQuote(
            offer=PackageOffer.from_row(offer),
            quantity=quantity,
            total_cents=total,
            currency=offer.currency,
        )
