from __future__ import annotations

import strawberry

from koomsg.core.recipients import service as suppression
from koomsg.schema.context import Info
from koomsg.schema.suppression.types import SuppressionEntry


@strawberry.type
class SuppressionMutation:
    @strawberry.mutation(description="Never send to this address again (until removed).")
    async def add_suppression(
        self, info: Info, address: str, note: str | None = None
    ) -> SuppressionEntry:
        async with info.context.write("KooMessage:suppression:update") as (session, principal):
            row = await suppression.add_manual(
                session, principal=principal, address=address, note=note
            )
            return SuppressionEntry.from_row(row)

    @strawberry.mutation(
        description="Allow sending to this address again. Returns the address removed."
    )
    async def remove_suppression(self, info: Info, address: str) -> str:
        async with info.context.write("KooMessage:suppression:update") as (session, principal):
            return await suppression.remove(session, principal=principal, address=address)
