from __future__ import annotations

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.domains import models
from koomsg.core.domains import service as domains
from koomsg.schema.common import Connection, to_connection
from koomsg.schema.context import Info
from koomsg.schema.domains.types import SenderDomain, SenderDomainFilter


async def to_types(session: AsyncSession, rows: list[models.SenderDomain]) -> list[SenderDomain]:
    keys = await domains.active_keys(session, [row.id for row in rows])
    return [SenderDomain.from_row(row, keys[row.id]) for row in rows]


async def to_type(session: AsyncSession, row: models.SenderDomain) -> SenderDomain:
    return (await to_types(session, [row]))[0]


@strawberry.type
class DomainQuery:
    @strawberry.field(description="The enterprise's sender domains, newest first.")
    async def sender_domains(
        self,
        info: Info,
        filter: SenderDomainFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SenderDomain]:
        async with info.context.read("KooMessage:senderDomain:list") as (session, principal):
            page = await domains.list_domains(
                session,
                principal=principal,
                name=filter.name if filter else None,
                status=models.DomainStatus(filter.status.value)
                if filter and filter.status
                else None,
                first=first,
                after=after,
            )
            converted = {d.id: d for d in await to_types(session, page.items)}
        return to_connection(page, lambda row: converted[row.id])
