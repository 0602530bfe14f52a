from __future__ import annotations

import strawberry

from koomsg.core.recipients import service as suppression
from koomsg.schema.common import Connection, to_connection
from koomsg.schema.context import Info
from koomsg.schema.suppression.types import SuppressionEntry, SuppressionFilter


@strawberry.type
class SuppressionQuery:
    @strawberry.field(description="The suppression list, newest first.")
    async def suppressions(
        self,
        info: Info,
        filter: SuppressionFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SuppressionEntry]:
        async with info.context.read("KooMessage:suppression:list") as (session, principal):
            page = await suppression.list_suppressions(
                session,
                principal=principal,
                address=filter.address if filter else None,
                first=first,
                after=after,
            )
            return to_connection(page, SuppressionEntry.from_row)
