"""Sender addresses: ``prefix@domain`` on a domain that passed verification.

The prefix and alias end up in the From header of every message, so both are
checked here against header injection, not only at sending time.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.addresses.models import SenderAddress
from koomsg.core.domains.models import DomainStatus, SenderDomain
from koomsg.core.domains.service import get_domain
from koomsg.core.errors import BadInput, Conflict, PreconditionFailed
from koomsg.core.pagination import Page, paginate
from koomsg.core.principal import Principal
from koomsg.core.tenancy.ownership import owned

MAX_PREFIX = 64  # RFC 5321 4.5.3.1.1; email-validator 2.4 lets 65 through
MAX_ALIAS = 64
_ENCODED_WORD = re.compile(r"=\?.*\?=", re.DOTALL)


def clean_prefix(prefix: str) -> str:
    prefix = prefix.strip()
    if not 1 <= len(prefix) <= MAX_PREFIX:
        raise BadInput("prefix", f"a sender address prefix has 1 to {MAX_PREFIX} characters")
    try:
        # A fixed domain keeps the verdict about the prefix alone.
        validate_email(
            f"{prefix}@example.com",
            check_deliverability=False,
            allow_quoted_local=False,
            allow_smtputf8=False,
        )
    except EmailNotValidError as exc:
        raise BadInput("prefix", f"not a valid address prefix: {exc}") from None
    return prefix


def clean_alias(alias: str | None) -> str | None:
    if alias is None or not alias.strip():
        return None
    alias = alias.strip()
    if len(alias) > MAX_ALIAS:
        raise BadInput("alias", f"a sender alias has at most {MAX_ALIAS} characters")
    # CR/LF would start a new header (injection); Zl/Zp are line breaks to some mail clients.
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in alias):
        raise BadInput("alias", "a sender alias cannot contain line breaks or control characters")
    if _ENCODED_WORD.search(alias):
        raise BadInput(
            "alias", 'a sender alias cannot contain encoded words ("=?...?="); type the text itself'
        )
    return alias


async def create_address(
    session: AsyncSession, *, principal: Principal, domain_id: str, prefix: str, alias: str | None
) -> SenderAddress:
    domain = await get_domain(session, principal=principal, domain_id=domain_id, field="domainId")
    if domain.status != DomainStatus.VERIFICATION_PASSED:
        raise PreconditionFailed(
            f"the sender domain {domain.name} has not passed verification: publish its DNS "
            "records and verify it first",
            field="domainId",
        )
    prefix = clean_prefix(prefix)
    address = SenderAddress(
        enterprise_id=domain.enterprise_id,
        domain_id=domain.id,
        prefix=prefix,
        prefix_folded=prefix.lower(),
        alias=clean_alias(alias),
    )
    try:
        async with session.begin_nested():
            session.add(address)
            await session.flush()
    except IntegrityError:
        raise Conflict(
            f"the sender address {prefix}@{domain.name} already exists", field="prefix"
        ) from None
    return address


async def get_address(
    session: AsyncSession, *, principal: Principal, address_id: str
) -> SenderAddress:
    return await owned(
        session, SenderAddress, address_id, principal=principal, message="no such sender address"
    )


async def delete_address(session: AsyncSession, *, principal: Principal, address_id: str) -> str:
    address = await get_address(session, principal=principal, address_id=address_id)
    await session.delete(address)
    await session.flush()
    return address.id


async def list_addresses(
    session: AsyncSession,
    *,
    principal: Principal,
    address: str | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[SenderAddress]:
    stmt = select(SenderAddress).where(
        SenderAddress.enterprise_id == principal.require_enterprise()
    )
    if address and address.strip():
        full = col(SenderAddress.prefix_folded) + "@" + col(SenderDomain.name)
        stmt = stmt.join(SenderDomain, col(SenderDomain.id) == SenderAddress.domain_id).where(
            full.contains(address.strip().lower(), autoescape=True)
        )
    return await paginate(session, stmt, col(SenderAddress.id), first=first, after=after)


@dataclass(frozen=True)
class Sender:
    """What a message's From header is built from."""

    address: str
    alias: str | None
    domain_id: str


async def get_sender(session: AsyncSession, *, principal: Principal, address_id: str) -> Sender:
    """For the sending areas: the address an id names, checked to belong to the caller."""
    row = await get_address(session, principal=principal, address_id=address_id)
    domain = await session.get(SenderDomain, row.domain_id)
    assert domain is not None
    return Sender(address=f"{row.prefix}@{domain.name}", alias=row.alias, domain_id=domain.id)
