from __future__ import annotations

from datetime import datetime

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.billing import models
from koomsg.core.billing.models import BillingMode as CoreBillingMode
from koomsg.core.billing.service import Overview as CoreOverview
from koomsg.schema.common import Node
from koomsg.schema.context import Info, loader

# strawberry.enum registers the core enum itself, so it is usable as a type annotation.
BillingMode = CoreBillingMode
strawberry.enum(
    CoreBillingMode,
    description="PAY_PER_USE: a pack of emails that never expires; MONTHLY and YEARLY: "
    "emails to use within one calendar month or one year of the purchase.",
)


@strawberry.type(description="A package the platform sells. Prices are in cents of `currency`.")
class PackageOffer(Node):
    id: strawberry.ID
    name: str
    mode: BillingMode
    email_quota: int = strawberry.field(description="Emails included in one package.")
    price_cents: int = strawberry.field(description="Price of one package, in cents.")
    currency: str = strawberry.field(description="ISO 4217 code, e.g. CNY.")
    retired: bool = strawberry.field(description="No longer sold; bought packages stay valid.")

    @classmethod
    def from_row(cls, row: models.PackageOffer) -> PackageOffer:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            mode=CoreBillingMode(row.mode),
            email_quota=row.email_quota,
            price_cents=row.price_cents,
            currency=row.currency,
            retired=row.retired_at is not None,
        )


async def _offers_of(session: AsyncSession, ids: list[str]) -> list[PackageOffer]:
    rows = {o.id: o for o in [await session.get(models.PackageOffer, i) for i in set(ids)] if o}
    return [PackageOffer.from_row(rows[i]) for i in ids]


@strawberry.type(
    description="A purchased package. Purchases are final: no refund, cancellation or change."
)
class Package(Node):
    id: strawberry.ID
    email_quota: int
    emails_used: int = strawberry.field(
        description="Emails spent, including those held by batches being sent right now."
    )
    emails_left: int
    purchased_at: datetime
    expires_at: datetime | None = strawberry.field(
        description="When unused emails are lost; null for pay-per-use packs, which never expire."
    )
    offer_id: strawberry.Private[str]

    @strawberry.field
    async def offer(self, info: Info) -> PackageOffer:
        return await loader(info, "billing.offers", _offers_of).load(self.offer_id)  # type: ignore[no-any-return]

    @classmethod
    def from_row(cls, row: models.Package) -> Package:
        used = row.emails_used + row.emails_reserved
        return cls(
            id=strawberry.ID(row.id),
            email_quota=row.email_quota,
            emails_used=used,
            emails_left=max(0, row.email_quota - used),
            purchased_at=row.purchased_at,
            expires_at=row.expires_at,
            offer_id=row.offer_id,
        )


@strawberry.type(description="The price calculator's answer.")
class PriceQuote:
    offer: PackageOffer
    quantity: int
    total_cents: int = strawberry.field(description="Price of `quantity` packages, in cents.")
    currency: str


@strawberry.type(
    description="The overview page: live packages and usage. Emails are spent from packages "
    "first (the one expiring soonest first), then billed pay-per-use."
)
class Overview:
    packages: list[Package] = strawberry.field(
        description="Unexpired packages with emails left, in the order they are spent."
    )
    emails_left: int = strawberry.field(description="Emails left across live packages.")
    pay_per_use_emails_this_month: int = strawberry.field(
        description="Emails billed pay-per-use this calendar month (UTC)."
    )
    pay_per_use_cap: int | None = strawberry.field(
        description="Monthly cap on pay-per-use emails; beyond it, messages are REJECTED with "
        '"quota exceeded". Null: no cap.'
    )

    @classmethod
    def from_core(cls, overview: CoreOverview) -> Overview:
        return cls(
            packages=[Package.from_row(p) for p in overview.packages],
            emails_left=overview.emails_left,
            pay_per_use_emails_this_month=overview.pay_per_use_this_month,
            pay_per_use_cap=overview.pay_per_use_cap,
        )
