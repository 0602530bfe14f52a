"""IAM users, groups, policies and keys of one enterprise, and authorisation."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import BadInput, Conflict, Forbidden, ServiceNotEnabled
from koomsg.core.iam import keys
from koomsg.core.iam.actions import get_action
from koomsg.core.iam.effective import named, policies_of_user
from koomsg.core.iam.grants import require_held
from koomsg.core.iam.models import AccessKey, GroupMember, GroupPolicy, IamGroup, IamUser, Policy
from koomsg.core.iam.permissions import EffectivePermissions
from koomsg.core.iam.policy import Decision, evaluate, validate_document
from koomsg.core.principal import Principal, PrincipalKind
from koomsg.core.tenancy.models import Enterprise
from koomsg.core.tenancy.ownership import owned

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@ ")


def _iam_name(name: str, *, field: str = "name", limit: int = 64) -> str:
    name = name.strip()
    if not 1 <= len(name) <= limit:
        raise BadInput(field, f"a name has 1 to {limit} characters")
    if not set(name) <= _NAME_CHARS:
        raise BadInput(field, "a name may use letters, digits, spaces and - _ . @ only")
    return name


async def _insert(session: AsyncSession, row: Any, what: str) -> Any:
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"{what} with this name already exists", field="name") from None
    return row


async def create_user(session: AsyncSession, *, principal: Principal, name: str) -> IamUser:
    user = IamUser(enterprise_id=principal.require_enterprise(), name=_iam_name(name))
    return await _insert(session, user, "an IAM user")


async def create_group(session: AsyncSession, *, principal: Principal, name: str) -> IamGroup:
    group = IamGroup(enterprise_id=principal.require_enterprise(), name=_iam_name(name))
    return await _insert(session, group, "an IAM group")


async def create_policy(
    session: AsyncSession, *, principal: Principal, name: str, document: Any
) -> Policy:
    policy = Policy(
        enterprise_id=principal.require_enterprise(),
        name=_iam_name(name, limit=128),
        document=validate_document(document),
    )
    change = f"creating policy {policy.name!r}"
    grant = [(policy.name, policy.document)]
    await require_held(session, principal=principal, grant=grant, change=change, field="document")
    return await _insert(session, policy, "a policy")


async def get_user(session: AsyncSession, *, principal: Principal, user_id: str) -> IamUser:
    return await owned(
        session, IamUser, user_id, principal=principal, message="no such user", field="userId"
    )


async def get_group(session: AsyncSession, *, principal: Principal, group_id: str) -> IamGroup:
    return await owned(
        session, IamGroup, group_id, principal=principal, message="no such group", field="groupId"
    )


async def get_policy(session: AsyncSession, *, principal: Principal, policy_id: str) -> Policy:
    return await owned(
        session, Policy, policy_id, principal=principal, message="no such policy", field="policyId"
    )


async def add_user_to_group(
    session: AsyncSession, *, principal: Principal, user_id: str, group_id: str
) -> IamGroup:
    user = await get_user(session, principal=principal, user_id=user_id)
    group = await get_group(session, principal=principal, group_id=group_id)
    grant = named((await policies_of_groups(session, [group.id]))[group.id])
    change = f"adding user {user.name!r} to group {group.name!r}"
    await require_held(session, principal=principal, grant=grant, change=change, field="groupId")
    if await session.get(GroupMember, (group.id, user.id)) is None:
        session.add(GroupMember(group_id=group.id, user_id=user.id))
        await session.flush()
    return group


async def attach_policy(
    session: AsyncSession, *, principal: Principal, group_id: str, policy_id: str
) -> IamGroup:
    group = await get_group(session, principal=principal, group_id=group_id)
    policy = await get_policy(session, principal=principal, policy_id=policy_id)
    change = f"attaching policy {policy.name!r} to group {group.name!r}"
    grant = named([policy])
    await require_held(session, principal=principal, grant=grant, change=change, field="policyId")
    if await session.get(GroupPolicy, (group.id, policy.id)) is None:
        session.add(GroupPolicy(group_id=group.id, policy_id=policy.id))
        await session.flush()
    return group


async def create_access_key(
    session: AsyncSession, *, principal: Principal, user_id: str
) -> tuple[AccessKey, str]:
    """Issue the key, unchecked: callers go through ``access_keys.create_for_user``."""
    user = await get_user(session, principal=principal, user_id=user_id)
    return await keys.issue_key(
        session,
        kind=PrincipalKind.IAM_USER,
        name=user.name,
        enterprise_id=user.enterprise_id,
        user_id=user.id,
    )


async def list_users(session: AsyncSession, *, principal: Principal) -> list[IamUser]:
    stmt = select(IamUser).where(IamUser.enterprise_id == principal.require_enterprise())
    return list((await session.exec(stmt.order_by(col(IamUser.id)))).all())


async def list_groups(session: AsyncSession, *, principal: Principal) -> list[IamGroup]:
    stmt = select(IamGroup).where(IamGroup.enterprise_id == principal.require_enterprise())
    return list((await session.exec(stmt.order_by(col(IamGroup.id)))).all())


async def list_policies(session: AsyncSession, *, principal: Principal) -> list[Policy]:
    stmt = select(Policy).where(Policy.enterprise_id == principal.require_enterprise())
    return list(
        (await session.exec(stmt.order_by(col(Policy.system).desc(), col(Policy.id)))).all()
    )


async def users_of_groups(session: AsyncSession, group_ids: list[str]) -> dict[str, list[IamUser]]:
    stmt = (
        select(GroupMember.group_id, IamUser)
        .join(IamUser, col(IamUser.id) == GroupMember.user_id)
        .where(col(GroupMember.group_id).in_(group_ids))
        .order_by(col(IamUser.id))
    )
    found: dict[str, list[IamUser]] = {gid: [] for gid in group_ids}
    for group_id, user in (await session.exec(stmt)).all():
        found[group_id].append(user)
    return found


async def groups_of_users(session: AsyncSession, user_ids: list[str]) -> dict[str, list[IamGroup]]:
    stmt = (
        select(GroupMember.user_id, IamGroup)
        .join(IamGroup, col(IamGroup.id) == GroupMember.group_id)
        .where(col(GroupMember.user_id).in_(user_ids))
        .order_by(col(IamGroup.id))
    )
    found: dict[str, list[IamGroup]] = {uid: [] for uid in user_ids}
    for user_id, group in (await session.exec(stmt)).all():
        found[user_id].append(group)
    return found


async def policies_of_groups(
    session: AsyncSession, group_ids: list[str]
) -> dict[str, list[Policy]]:
    stmt = (
        select(GroupPolicy.group_id, Policy)
        .join(Policy, col(Policy.id) == GroupPolicy.policy_id)
        .where(col(GroupPolicy.group_id).in_(group_ids))
        .order_by(col(Policy.id))
    )
    found: dict[str, list[Policy]] = {gid: [] for gid in group_ids}
    for group_id, policy in (await session.exec(stmt)).all():
        found[group_id].append(policy)
    return found


async def _user_policies(session: AsyncSession, user_id: str) -> list[Policy]:
    return await policies_of_user(session, user_id)


async def decide(
    session: AsyncSession,
    *,
    principal: Principal,
    action: str,
    permissions: EffectivePermissions | None = None,
) -> Decision:
    """What the policies say about ``action`` for this principal (no enablement check).

    ``permissions``, when given, are the principal's policies loaded earlier in
    the same request: nothing is read again.
    """
    if permissions is None or permissions.principal != principal:
        permissions = await EffectivePermissions.load(session, principal)
    return permissions.decide(action)


async def authorize(
    session: AsyncSession,
    *,
    principal: Principal,
    action: str,
    permissions: EffectivePermissions | None = None,
) -> None:
    """Raise unless ``principal`` may perform ``action`` now."""
    spec = get_action(action)
    decision = await decide(session, principal=principal, action=action, permissions=permissions)
    if not decision.allowed:
        if spec.operator_only:
            raise Forbidden(f"{action} is reserved to platform operators")
        if principal.is_operator:
            raise Forbidden(f"{action} acts on an enterprise's resources: use an enterprise key")
        raise Forbidden(f"{action} is {decision.explanation}")
    if spec.needs_enabled_service:
        await require_enabled(session, principal=principal)


async def require_enabled(session: AsyncSession, *, principal: Principal) -> None:
    """Raise unless the principal's enterprise (if any) has enabled the service."""
    if principal.enterprise_id is not None:
        enterprise = await session.get(Enterprise, principal.enterprise_id)
        if enterprise is None or not enterprise.service_enabled:
            raise ServiceNotEnabled(
                "KooMessage is not enabled for this enterprise: call enableService(acceptTerms: true) first"
            )


async def simulate(
    session: AsyncSession, *, principal: Principal, user_id: str, action: str
) -> Decision:
    """The policy simulator: how ``action`` would be decided for one IAM user."""
    user = await get_user(session, principal=principal, user_id=user_id)
    segments = action.split(":")
    if len(segments) != 3 or not all(segments):
        raise BadInput("action", "an action reads Service:resource:operation")
    policies = await _user_policies(session, user.id)
    return evaluate(((p.name, p.document) for p in policies), action)
