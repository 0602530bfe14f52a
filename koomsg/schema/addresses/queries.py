from __future__ import annotations

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.addresses import models
from koomsg.core.addresses import service as addresses
from koomsg.core.domains import service as domains
from koomsg.schema.addresses.types import SenderAddress, SenderAddressFilter
from koomsg.schema.common import Connection, to_connection
from koomsg.schema.context import Info


async def to_types(session: AsyncSession, rows: list[models.SenderAddress]) -> list[SenderAddress]:
    names = await domains.domains_by_ids(session, list({row.domain_id for row in rows}))
    return [SenderAddress.from_row(row, names[row.domain_id].name) for row in rows]


async def to_type(session: AsyncSession, row: models.SenderAddress) -> SenderAddress:
    return (await to_types(session, [row]))[0]


@strawberry.type
class AddressQuery:
    @strawberry.field(description="The enterprise's sender addresses, newest first.")
    async def sender_addresses(
        self,
        info: Info,
        filter: SenderAddressFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SenderAddress]:
        async with info.context.read("KooMessage:senderAddress:list") as (session, principal):
            page = await addresses.list_addresses(
                session,
                principal=principal,
                address=filter.address if filter else None,
                first=first,
                after=after,
            )
            converted = {a.id: a for a in await to_types(session, page.items)}
        return to_connection(page, lambda row: converted[row.id])
