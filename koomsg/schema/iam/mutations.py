from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from koomsg.core.iam import service as iam
from koomsg.schema.context import Info
from koomsg.schema.iam.types import AccessKey, IamGroup, IamUser, Policy


@strawberry.type
class IamMutation:
    @strawberry.mutation
    async def create_iam_user(self, info: Info, name: str) -> IamUser:
        async with info.context.write("KooMessage:iamUser:create") as (session, principal):
            return IamUser.from_row(await iam.create_user(session, principal=principal, name=name))

    @strawberry.mutation
    async def create_iam_group(self, info: Info, name: str) -> IamGroup:
        async with info.context.write("KooMessage:iamGroup:create") as (session, principal):
            return IamGroup.from_row(
                await iam.create_group(session, principal=principal, name=name)
            )

    @strawberry.mutation
    async def add_user_to_group(
        self, info: Info, user_id: strawberry.ID, group_id: strawberry.ID
    ) -> IamGroup:
        async with info.context.write("KooMessage:iamGroup:update") as (session, principal):
            group = await iam.add_user_to_group(
                session, principal=principal, user_id=user_id, group_id=group_id
            )
            return IamGroup.from_row(group)

    @strawberry.mutation(description="Create a custom policy; see the README for the action names.")
    async def create_policy(self, info: Info, name: str, document: JSON) -> Policy:
        async with info.context.write("KooMessage:policy:create") as (session, principal):
            return Policy.from_row(
                await iam.create_policy(session, principal=principal, name=name, document=document)
            )

    @strawberry.mutation
    async def attach_policy(
        self, info: Info, group_id: strawberry.ID, policy_id: strawberry.ID
    ) -> IamGroup:
        async with info.context.write("KooMessage:iamGroup:update") as (session, principal):
            group = await iam.attach_policy(
                session, principal=principal, group_id=group_id, policy_id=policy_id
            )
            return IamGroup.from_row(group)

    @strawberry.mutation(
        description="Create an access key for an IAM user. The secret is shown only now."
    )
    async def create_access_key(self, info: Info, user_id: strawberry.ID) -> AccessKey:
        async with info.context.write("KooMessage:accessKey:create") as (session, principal):
            key, secret = await iam.create_access_key(session, principal=principal, user_id=user_id)
            return AccessKey(id=strawberry.ID(key.id), secret=secret, created_at=key.created_at)
