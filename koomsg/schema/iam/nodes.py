from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.iam import service as iam
from koomsg.core.principal import Principal
from koomsg.schema.iam.types import IamGroup, IamUser, Policy
from koomsg.schema.node import register_node


async def _user(session: AsyncSession, principal: Principal, ident: str) -> IamUser:
    return IamUser.from_row(await iam.get_user(session, principal=principal, user_id=ident))


async def _group(session: AsyncSession, principal: Principal, ident: str) -> IamGroup:
    return IamGroup.from_row(await iam.get_group(session, principal=principal, group_id=ident))


async def _policy(session: AsyncSession, principal: Principal, ident: str) -> Policy:
    return Policy.from_row(await iam.get_policy(session, principal=principal, policy_id=ident))


register_node("usr", "KooMessage:iamUser:list", _user)
register_node("grp", "KooMessage:iamGroup:list", _group)
register_node("pol", "KooMessage:policy:list", _policy)
