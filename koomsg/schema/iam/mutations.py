from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from koomsg.core.iam import access_keys, removals
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
        description="Remove a user from a group. Nothing changes if it is not a member."
    )
    async def remove_user_from_group(
        self, info: Info, user_id: strawberry.ID, group_id: strawberry.ID
    ) -> IamGroup:
        async with info.context.write("KooMessage:iamGroup:removeUser") as (session, principal):
            group = await removals.remove_user_from_group(
                session, principal=principal, user_id=user_id, group_id=group_id
            )
            return IamGroup.from_row(group)

    @strawberry.mutation(
        description="Detach a policy from a group. Nothing changes if it is not attached."
    )
    async def detach_policy(
        self, info: Info, group_id: strawberry.ID, policy_id: strawberry.ID
    ) -> IamGroup:
        async with info.context.write("KooMessage:iamGroup:detachPolicy") as (session, principal):
            group = await removals.detach_policy(
                session, principal=principal, group_id=group_id, policy_id=policy_id
            )
            return IamGroup.from_row(group)

    @strawberry.mutation(
        description="Delete an IAM user: its access keys are revoked at once and its group "
        "memberships end. Returns the deleted user's id."
    )
    async def delete_iam_user(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        async with info.context.write("KooMessage:iamUser:delete") as (session, principal):
            return strawberry.ID(
                await removals.delete_user(session, principal=principal, user_id=id)
            )

    @strawberry.mutation(
        description="Create an access key for an IAM user. The secret is shown only now. "
        "A user may always create keys for itself; at most two keys per user are active."
    )
    async def create_access_key(self, info: Info, user_id: strawberry.ID) -> AccessKey:
        async with info.context.write("KooMessage:accessKey:create", self_service=True) as (
            session,
            principal,
        ):
            key, secret = await access_keys.create_for_user(
                session, principal=principal, user_id=user_id
            )
            return AccessKey.from_row(key, secret=secret)

    @strawberry.mutation(
        description="Revoke an access key: from the next request on it authenticates nowhere. "
        "A user may always revoke its own keys. Revoking a revoked key changes nothing."
    )
    async def revoke_access_key(self, info: Info, id: strawberry.ID) -> AccessKey:
        async with info.context.write("KooMessage:accessKey:revoke", self_service=True) as (
            session,
            principal,
        ):
            return AccessKey.from_row(
                await access_keys.revoke(session, principal=principal, key_id=id)
            )
