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

    @strawberry.field(description="Operators: every enterprise of the platform.")
    async def enterprises(self, info: Info) -> list[Enterprise]:
        async with info.context.read("KooMessage:enterprise:list") as (session, _):
            return [Enterprise.from_row(row) for row in await tenancy.list_enterprises(session)]
