"""The access key lifecycle: create, list, revoke.

Who may do what with an enterprise's keys:

* the enterprise root: everything, on every key of its enterprise;
* an IAM user, on its own keys: always (self-service, no action needed);
* an IAM user, on other IAM users' keys: with ``KooMessage:accessKey:list``,
  ``…:create`` or ``…:revoke``. Creating a key for someone also needs every
  permission that user holds (``grants.require_held``): the key puts them in
  the caller's hands;
* root keys belong to the root: IAM users neither list nor revoke them.

Operators manage every key with ``koomsg operator list-keys`` and
``revoke-key``. An IAM user has at most two active keys: enough to rotate
without downtime (create the new one, deploy it, revoke the old one).
Revocation sets ``revoked_at``; authentication reads the key's row on every
request, so it holds from the very next request in every process.
"""

from __future__ import annotations

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.clock import utcnow
from koomsg.core.errors import Forbidden, NotFound, PreconditionFailed
from koomsg.core.iam import service as iam
from koomsg.core.iam.effective import named, policies_of_user
from koomsg.core.iam.grants import require_held
from koomsg.core.iam.models import AccessKey, IamUser
from koomsg.core.notices import changed, key_topic
from koomsg.core.principal import Principal, PrincipalKind
from koomsg.core.tenancy.ownership import could_name_a_row

MAX_ACTIVE_PER_USER = 2
LIST = "KooMessage:accessKey:list"
CREATE = "KooMessage:accessKey:create"
REVOKE = "KooMessage:accessKey:revoke"


def _is_self(principal: Principal, user_id: str | None) -> bool:
    return principal.kind is PrincipalKind.IAM_USER and principal.user_id == user_id


async def _authorize(
    session: AsyncSession, principal: Principal, action: str, owner: str | None
) -> None:
    if _is_self(principal, owner):
        await iam.require_enabled(session, principal=principal)
    else:
        await iam.authorize(session, principal=principal, action=action)


async def create_for_user(
    session: AsyncSession, *, principal: Principal, user_id: str
) -> tuple[AccessKey, str]:
    """A new key for an IAM user; the secret is returned once and never stored."""
    user = await iam.get_user(session, principal=principal, user_id=user_id)
    await _authorize(session, principal, CREATE, user.id)
    if not _is_self(principal, user.id):
        grant = named(await policies_of_user(session, user.id))
        change = f"creating an access key for user {user.name!r}"
        await require_held(session, principal=principal, grant=grant, change=change, field="userId")
    # Lock the user's row so two concurrent creations cannot both pass the count.
    await session.exec(select(IamUser.id).where(IamUser.id == user.id).with_for_update())
    if await _active_count(session, user.id) >= MAX_ACTIVE_PER_USER:
        raise PreconditionFailed(
            f"user {user.name!r} already has {MAX_ACTIVE_PER_USER} active access keys, the "
            "most a user may have: revoke one (revokeAccessKey) before creating another",
            field="userId",
        )
    return await iam.create_access_key(session, principal=principal, user_id=user.id)


async def _active_count(session: AsyncSession, user_id: str) -> int:
    stmt = select(func.count()).where(
        AccessKey.user_id == user_id, col(AccessKey.revoked_at).is_(None)
    )
    return int((await session.exec(stmt)).one())


async def list_keys(
    session: AsyncSession, *, principal: Principal, user_id: str | None = None
) -> list[AccessKey]:
    """The root sees every key of its enterprise; an IAM user with the list action
    every IAM user's key; any IAM user its own. ``user_id`` narrows to one user."""
    stmt = select(AccessKey).where(AccessKey.enterprise_id == principal.require_enterprise())
    if user_id is not None:
        user = await iam.get_user(session, principal=principal, user_id=user_id)
        await _authorize(session, principal, LIST, user.id)
        stmt = stmt.where(AccessKey.user_id == user.id)
    elif principal.kind is PrincipalKind.IAM_USER:
        await iam.require_enabled(session, principal=principal)
        if (await iam.decide(session, principal=principal, action=LIST)).allowed:
            stmt = stmt.where(AccessKey.kind == PrincipalKind.IAM_USER)
        else:
            stmt = stmt.where(AccessKey.user_id == principal.user_id)
    else:
        await iam.authorize(session, principal=principal, action=LIST)
    return list(
        (await session.exec(stmt.order_by(col(AccessKey.created_at), col(AccessKey.id)))).all()
    )


async def revoke(session: AsyncSession, *, principal: Principal, key_id: str) -> AccessKey:
    """Revoke one of the enterprise's keys; revoking a revoked key changes nothing."""
    key = await session.get(AccessKey, key_id) if could_name_a_row(AccessKey, key_id) else None
    if key is None or key.enterprise_id != principal.require_enterprise():
        raise NotFound("no such access key", field="id")
    if key.kind == PrincipalKind.ENTERPRISE_ROOT and principal.kind != key.kind:
        raise Forbidden(
            "an enterprise root key is revoked with a root key, or by an operator "
            "(koomsg operator revoke-key)",
            field="id",
        )
    await _authorize(session, principal, REVOKE, key.user_id)
    return await revoke_row(session, key)


async def revoke_row(session: AsyncSession, key: AccessKey) -> AccessKey:
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        await session.flush()
        # A taskProgress stream holding this key wakes, authenticates again and stops.
        changed(session, key_topic(key.id))
    return key


async def retire_user_keys(session: AsyncSession, *, user_id: str) -> None:
    """Before an IAM user is deleted: revoke its keys and let them outlive it."""
    await session.execute(
        update(AccessKey)
        .where(col(AccessKey.user_id) == user_id)
        .values(revoked_at=func.coalesce(AccessKey.revoked_at, utcnow()), user_id=None)
    )


async def operator_list(
    session: AsyncSession, *, enterprise_id: str | None = None
) -> list[AccessKey]:
    """Every key of the platform, or of one enterprise (the operator CLI)."""
    stmt = select(AccessKey)
    if enterprise_id is not None:
        stmt = stmt.where(AccessKey.enterprise_id == enterprise_id)
    return list(
        (await session.exec(stmt.order_by(col(AccessKey.created_at), col(AccessKey.id)))).all()
    )


async def operator_revoke(session: AsyncSession, *, key_id: str) -> AccessKey:
    """Revoke any key, operator keys included (the operator CLI)."""
    key = await session.get(AccessKey, key_id) if could_name_a_row(AccessKey, key_id) else None
    if key is None:
        raise NotFound(f"no such access key {key_id!r}", field="keyId")
    return await revoke_row(session, key)
