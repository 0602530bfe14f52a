from __future__ import annotations

import strawberry

from koomsg.core.tenancy import service as tenancy
from koomsg.schema.context import Info
from koomsg.schema.tenancy.types import Enterprise, Principal


@strawberry.type
class TenancyQuery:
    @strawberry.field(description="Who the access key belongs to. Any valid key may ask.")
    async def me(self, info: Info) -> Principal:
        async with info.context.read(None) as (session, principal):
            enterprise = None
            if principal.enterprise_id:
                row = await tenancy.get_enterprise(session, enterprise_id=principal.enterprise_id)
                enterprise = Enterprise.from_row(row)
            return Principal(kind=principal.kind, name=principal.name, enterprise=enterprise)

    @strawberry.field(
        description="Operators: the enterprises of the platform, oldest first. `first` (at most "
        "100) makes a page; `after` is the id of the last enterprise of the previous page. "
        "Without `first`: up to 1 000."
    )
    async def enterprises(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> list[Enterprise]:
        async with info.context.read("KooMessage:enterprise:list") as (session, _):
            rows = await tenancy.list_enterprises(session, first=first, after=after)
            return [Enterprise.from_row(row) for row in rows]
