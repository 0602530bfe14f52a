"""Operators suspend and resume enterprises (core/tenancy/suspension.py has the rules)."""

from __future__ import annotations

import strawberry

from koomsg.core.clock import utcnow
from koomsg.core.tenancy import suspension
from koomsg.schema.context import Info
from koomsg.schema.tenancy.types import Enterprise


@strawberry.type
class SuspensionMutation:
    @strawberry.mutation(
        description="Operators: suspend an enterprise. Its keys still authenticate and read; "
        "every mutation answers SUSPENDED with `reason` (extensions.reason); its queued and "
        "scheduled messages wait, in their states, until resumeEnterprise."
    )
    async def suspend_enterprise(
        self, info: Info, enterprise_id: strawberry.ID, reason: str
    ) -> Enterprise:
        async with info.context.write("KooMessage:enterprise:suspend") as (session, _):
            row = await suspension.suspend_enterprise(
                session, enterprise_id=enterprise_id, reason=reason, now=utcnow()
            )
            return Enterprise.from_row(row)

    @strawberry.mutation(
        description="Operators: end a suspension. Held messages go out and due scheduled "
        "tasks start at the next dispatch."
    )
    async def resume_enterprise(self, info: Info, enterprise_id: strawberry.ID) -> Enterprise:
        async with info.context.write("KooMessage:enterprise:suspend") as (session, _):
            row = await suspension.resume_enterprise(session, enterprise_id=enterprise_id)
            return Enterprise.from_row(row)
