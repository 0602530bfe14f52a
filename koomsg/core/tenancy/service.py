"""Enterprises: creation by operators, verification, and enabling the service."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.clock import utcnow
from koomsg.core.errors import BadInput, NotFound, PreconditionFailed
from koomsg.core.iam.models import Policy
from koomsg.core.iam.policy import FULL_ACCESS_DOCUMENT, FULL_ACCESS_NAME
from koomsg.core.principal import Principal
from koomsg.core.tenancy.models import Enterprise, IndustryClass
from koomsg.core.tenancy.ownership import could_name_a_row


def _clean_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 128:
        raise BadInput("name", "an enterprise name has 1 to 128 characters")
    if any(ord(ch) < 32 for ch in name):
        raise BadInput("name", "an enterprise name cannot contain control characters")
    return name


async def create_enterprise(
    session: AsyncSession,
    *,
    name: str,
    real_name_verified: bool,
    industry_class: IndustryClass,
) -> Enterprise:
    enterprise = Enterprise(
        name=_clean_name(name),
        real_name_verified=real_name_verified,
        industry_class=industry_class,
    )
    session.add(enterprise)
    await session.flush()
    # Every enterprise gets the system policy, so its groups can be granted everything.
    session.add(
        Policy(
            enterprise_id=enterprise.id,
            name=FULL_ACCESS_NAME,
            system=True,
            document=FULL_ACCESS_DOCUMENT,
        )
    )
    await session.flush()
    return enterprise


async def get_enterprise(session: AsyncSession, *, enterprise_id: str) -> Enterprise:
    named = could_name_a_row(Enterprise, enterprise_id)
    enterprise = await session.get(Enterprise, enterprise_id) if named else None
    if enterprise is None:
        raise NotFound("no such enterprise", field="enterpriseId")
    return enterprise


# Without ``first`` the list is every enterprise up to this bound (operators' tools that
# predate paging read it whole); with it, a page of at most MAX_PAGE_SIZE.
MAX_UNPAGED = 1000


async def list_enterprises(
    session: AsyncSession, *, first: int | None = None, after: str | None = None
) -> list[Enterprise]:
    """Oldest first; ``after`` is the id of the last enterprise of the previous page."""
    from koomsg.core.pagination import page_size

    statement = select(Enterprise).order_by(Enterprise.id)
    if after is not None:
        if not could_name_a_row(Enterprise, after):
            raise BadInput("after", "after is the id of the last enterprise of the previous page")
        statement = statement.where(Enterprise.id > after)
    limit = MAX_UNPAGED if first is None else page_size(first)
    return list((await session.exec(statement.limit(limit))).all())


async def set_verification(
    session: AsyncSession,
    *,
    enterprise_id: str,
    real_name_verified: bool,
    industry_class: IndustryClass,
) -> Enterprise:
    enterprise = await get_enterprise(session, enterprise_id=enterprise_id)
    enterprise.real_name_verified = real_name_verified
    enterprise.industry_class = industry_class
    session.add(enterprise)
    await session.flush()
    return enterprise


async def enable_service(
    session: AsyncSession, *, principal: Principal, accept_terms: bool
) -> Enterprise:
    if not accept_terms:
        raise BadInput(
            "acceptTerms", "the service usage statement must be accepted to enable KooMessage"
        )
    enterprise = await get_enterprise(session, enterprise_id=principal.require_enterprise())
    if not enterprise.real_name_verified:
        raise PreconditionFailed(
            "KooMessage is available only to enterprises that completed real-name authentication; "
            "ask the platform operator to verify the enterprise first"
        )
    if not enterprise.service_enabled:
        enterprise.service_enabled = True
        enterprise.terms_accepted_at = utcnow()
        session.add(enterprise)
        await session.flush()
    return enterprise
