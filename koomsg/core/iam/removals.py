"""The IAM verbs that take away: remove a user from a group, detach a policy, delete a user.

Taking away can still grant: when what goes away is a Deny, the users
concerned may do more afterwards. Removals are therefore checked like grants
(``grants.require_held``), with what each user held before subtracted: the
caller must hold whatever a user would gain.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.iam import access_keys
from koomsg.core.iam import service as iam
from koomsg.core.iam.effective import named, policies_of_user
from koomsg.core.iam.grants import require_held
from koomsg.core.iam.models import GroupMember, GroupPolicy, IamGroup, IamUser
from koomsg.core.principal import Principal, PrincipalKind


async def _check_gain(
    session: AsyncSession,
    principal: Principal,
    user: IamUser,
    *,
    change: str,
    field: str,
    without_group: str | None = None,
    without_attachment: tuple[str, str] | None = None,
) -> None:
    if principal.kind is PrincipalKind.ENTERPRISE_ROOT:
        return
    before = named(await policies_of_user(session, user.id))
    after = named(
        await policies_of_user(
            session, user.id, without_group=without_group, without_attachment=without_attachment
        )
    )
    await require_held(
        session, principal=principal, grant=after, before=before, change=change, field=field
    )


async def remove_user_from_group(
    session: AsyncSession, *, principal: Principal, user_id: str, group_id: str
) -> IamGroup:
    """Idempotent: removing a user who is not a member changes nothing."""
    user = await iam.get_user(session, principal=principal, user_id=user_id)
    group = await iam.get_group(session, principal=principal, group_id=group_id)
    membership = await session.get(GroupMember, (group.id, user.id))
    if membership is not None:
        change = f"removing user {user.name!r} from group {group.name!r}"
        await _check_gain(
            session, principal, user, change=change, field="groupId", without_group=group.id
        )
        await session.delete(membership)
        await session.flush()
    return group


async def detach_policy(
    session: AsyncSession, *, principal: Principal, group_id: str, policy_id: str
) -> IamGroup:
    """Idempotent: detaching a policy that is not attached changes nothing."""
    group = await iam.get_group(session, principal=principal, group_id=group_id)
    policy = await iam.get_policy(session, principal=principal, policy_id=policy_id)
    attachment = await session.get(GroupPolicy, (group.id, policy.id))
    if attachment is not None:
        for member in (await iam.users_of_groups(session, [group.id]))[group.id]:
            change = (
                f"detaching policy {policy.name!r} from group {group.name!r} "
                f"(member {member.name!r})"
            )
            await _check_gain(
                session,
                principal,
                member,
                change=change,
                field="policyId",
                without_attachment=(group.id, policy.id),
            )
        await session.delete(attachment)
        await session.flush()
    return group


async def delete_user(session: AsyncSession, *, principal: Principal, user_id: str) -> str:
    """Delete an IAM user: its keys are revoked (and kept, ownerless), its memberships end."""
    user = await iam.get_user(session, principal=principal, user_id=user_id)
    await access_keys.retire_user_keys(session, user_id=user.id)
    await session.execute(delete(GroupMember).where(col(GroupMember.user_id) == user.id))
    await session.delete(user)
    await session.flush()
    return user.id
