from __future__ import annotations

import strawberry

from koomsg.core.iam import access_keys
from koomsg.core.iam import service as iam
from koomsg.schema.context import Info
from koomsg.schema.iam.types import AccessKey, IamGroup, IamUser, Policy, PolicyDecision


@strawberry.type
class IamQuery:
    @strawberry.field
    async def iam_users(self, info: Info) -> list[IamUser]:
        async with info.context.read("KooMessage:iamUser:list") as (session, principal):
            return [IamUser.from_row(u) for u in await iam.list_users(session, principal=principal)]

    @strawberry.field
    async def iam_groups(self, info: Info) -> list[IamGroup]:
        async with info.context.read("KooMessage:iamGroup:list") as (session, principal):
            return [
                IamGroup.from_row(g) for g in await iam.list_groups(session, principal=principal)
            ]

    @strawberry.field(description="System and custom policies of the enterprise.")
    async def policies(self, info: Info) -> list[Policy]:
        async with info.context.read("KooMessage:policy:list") as (session, principal):
            return [
                Policy.from_row(p) for p in await iam.list_policies(session, principal=principal)
            ]

    @strawberry.field(
        description="Access keys of the enterprise, revoked ones included; never their secrets. "
        "The root sees every key; an IAM user allowed KooMessage:accessKey:list every IAM user's "
        "key (not the root's); any IAM user its own. `userId` narrows to one user."
    )
    async def access_keys(
        self, info: Info, user_id: strawberry.ID | None = None
    ) -> list[AccessKey]:
        async with info.context.read("KooMessage:accessKey:list", self_service=True) as (
            session,
            principal,
        ):
            rows = await access_keys.list_keys(session, principal=principal, user_id=user_id)
            return [AccessKey.from_row(row) for row in rows]

    @strawberry.field(
        description="The policy simulator: would this IAM user be allowed `action`, and by which statement?"
    )
    async def simulate_policy(
        self, info: Info, user_id: strawberry.ID, action: str
    ) -> PolicyDecision:
        async with info.context.read("KooMessage:policy:simulate") as (session, principal):
            decision = await iam.simulate(
                session, principal=principal, user_id=user_id, action=action
            )
            return PolicyDecision(
                action=action,
                allowed=decision.allowed,
                effect=decision.effect,
                policy_name=decision.policy_name,
                statement_index=decision.statement_index,
                matched_action=decision.matched_action,
                explanation=decision.explanation,
            )
