"""Effective permissions: the policies an IAM user holds through its groups.

``policies_of_user`` can also answer "what would it hold without this group
(or this one attachment)", which is how a removal is checked for what it
would grant (removing a Deny widens a user's permissions).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, not_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.iam.models import GroupMember, GroupPolicy, Policy

NamedDocument = tuple[str, dict[str, Any]]


async def policies_of_user(
    session: AsyncSession,
    user_id: str,
    *,
    without_group: str | None = None,
    without_attachment: tuple[str, str] | None = None,
) -> list[Policy]:
    """The user's policies, optionally as if it left ``without_group`` or as if
    ``without_attachment`` (group id, policy id) were detached."""
    # A subquery, not DISTINCT: PostgreSQL cannot compare json documents.
    attached = (
        select(GroupPolicy.policy_id)
        .join(GroupMember, col(GroupMember.group_id) == GroupPolicy.group_id)
        .where(GroupMember.user_id == user_id)
    )
    if without_group is not None:
        attached = attached.where(col(GroupMember.group_id) != without_group)
    if without_attachment is not None:
        group_id, policy_id = without_attachment
        attached = attached.where(
            not_(
                and_(col(GroupPolicy.group_id) == group_id, col(GroupPolicy.policy_id) == policy_id)
            )
        )
    stmt = select(Policy).where(col(Policy.id).in_(attached)).order_by(col(Policy.id))
    return list((await session.exec(stmt)).all())


def named(policies: Iterable[Policy]) -> list[NamedDocument]:
    """(name, document) pairs, the form ``policy.evaluate`` reads."""
    return [(p.name, p.document) for p in policies]
