from __future__ import annotations

import strawberry

from koomsg.core.billing import offers
from koomsg.core.billing import service as billing
from koomsg.schema.billing.types import BillingMode, Package, PackageOffer
from koomsg.schema.context import Info
from koomsg.schema.tenancy.types import Enterprise


@strawberry.type
class BillingMutation:
    @strawberry.mutation(description="Operators: put a package on sale.")
    async def create_package_offer(
        self,
        info: Info,
        name: str,
        mode: BillingMode,
        email_quota: int,
        price_cents: int,
        currency: str,
    ) -> PackageOffer:
        async with info.context.write("KooMessage:packageOffer:create") as (session, principal):
            row = await offers.create_offer(
                session,
                principal=principal,
                name=name,
                mode=mode,
                email_quota=email_quota,
                price_cents=price_cents,
                currency=currency,
            )
            return PackageOffer.from_row(row)

    @strawberry.mutation(
        description="Operators: stop selling an offer. Packages already bought stay valid."
    )
    async def retire_package_offer(self, info: Info, id: strawberry.ID) -> PackageOffer:
        async with info.context.write("KooMessage:packageOffer:retire") as (session, principal):
            return PackageOffer.from_row(
                await offers.retire_offer(session, principal=principal, offer_id=id)
            )

    @strawberry.mutation(
        description="Buy 1 to 100 packages of an offer at once. Purchases are final: packages "
        "cannot be refunded, cancelled or changed afterwards. With an idempotencyKey, a retry "
        "with the same key and arguments within 24 hours returns the packages of the first "
        "call and charges nothing more; the same key with other arguments is CONFLICT."
    )
    async def purchase_package(
        self,
        info: Info,
        offer_id: strawberry.ID,
        quantity: int = 1,
        idempotency_key: str | None = None,
    ) -> list[Package]:
        async with info.context.write("KooMessage:package:purchase") as (session, principal):
            rows = await offers.purchase(
                session,
                principal=principal,
                offer_id=offer_id,
                quantity=quantity,
                idempotency_key=idempotency_key,
            )
            return [Package.from_row(row) for row in rows]

    @strawberry.mutation(
        description="Set the monthly cap on pay-per-use emails (null removes it). Beyond the cap, "
        'messages are REJECTED with "quota exceeded" instead of being billed.'
    )
    async def set_pay_per_use_cap(self, info: Info, cap: int | None = None) -> Enterprise:
        async with info.context.write("KooMessage:billing:update") as (session, principal):
            return Enterprise.from_row(
                await billing.set_pay_per_use_cap(session, principal=principal, cap=cap)
            )
