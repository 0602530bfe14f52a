"""Sender domains: create, rename, verify, delete, and what sending needs from them.

Delivery calls ``signing_key_for`` (which refuses unverified domains).
``delete_domain`` runs the guards it is given; ``koomsg.core.flows`` lists the
ones of the areas that keep a domain in use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import idna
from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.config import Settings
from koomsg.core.clock import utcnow
from koomsg.core.crypto import decrypt, encrypt
from koomsg.core.domains import dkim
from koomsg.core.domains.models import DkimKey, DomainStatus, SenderDomain
from koomsg.core.domains.names import normalise_domain
from koomsg.core.domains.records import DnsTargets, ExpectedRecord, expected_records
from koomsg.core.domains.verify import DnsClient, RecordCheck, ResolverClient, check_records, passes
from koomsg.core.errors import Conflict, NotFound, PreconditionFailed
from koomsg.core.pagination import Page, paginate
from koomsg.core.principal import Principal
from koomsg.core.tenancy.ownership import owned

MAX_DOMAINS_PER_ENTERPRISE = 10  # user guide 5.2

# An async check run before a domain is deleted; it raises Conflict naming what still
# uses the domain.
DeleteGuard = Callable[[AsyncSession, SenderDomain], Awaitable[None]]


def dns_client(settings: Settings) -> ResolverClient:
    return ResolverClient(settings.dns_nameservers, timeout=settings.dns_timeout_seconds)


async def active_key(session: AsyncSession, domain_id: str) -> DkimKey:
    stmt = select(DkimKey).where(DkimKey.domain_id == domain_id, col(DkimKey.active).is_(True))
    key = (await session.exec(stmt.order_by(col(DkimKey.id).desc()))).first()
    if key is None:  # every domain gets a key at creation; this is a broken row
        raise PreconditionFailed("the sender domain has no active DKIM key")
    return key


async def active_keys(session: AsyncSession, domain_ids: list[str]) -> dict[str, DkimKey]:
    stmt = select(DkimKey).where(
        col(DkimKey.domain_id).in_(domain_ids), col(DkimKey.active).is_(True)
    )
    return {
        key.domain_id: key for key in (await session.exec(stmt.order_by(col(DkimKey.id)))).all()
    }


def expected_for(domain: SenderDomain, key: DkimKey, settings: Settings) -> list[ExpectedRecord]:
    return expected_records(
        domain=domain.name,
        selector=key.selector,
        public_key=key.public_key,
        targets=DnsTargets.from_settings(settings),
    )


@dataclass(frozen=True)
class RecordView:
    """An expected record with what the last verification found for it."""

    record: ExpectedRecord
    successful: bool
    found: list[str]
    hint: str | None


def describe_records(domain: SenderDomain, key: DkimKey, settings: Settings) -> list[RecordView]:
    seen = {(c["type"], c["name"], c["expected"]): c for c in domain.checks}
    views = []
    for record in expected_for(domain, key, settings):
        check = seen.get((record.type.value, record.name, record.value))
        if check is None:
            hint = (
                "not verified yet: publish this record at your DNS provider, then verify the domain"
                if not domain.checks
                else "the expected value changed since the last verification: verify again"
            )
            views.append(RecordView(record, False, [], hint))
        else:
            views.append(
                RecordView(
                    record, check["status"] == "SUCCESSFUL", list(check["found"]), check["hint"]
                )
            )
    return views


async def _add_key(session: AsyncSession, *, domain: SenderDomain, settings: Settings) -> DkimKey:
    pem, public_key = dkim.generate_key()
    key = DkimKey(
        domain_id=domain.id,
        selector=dkim.new_selector(),
        private_key_encrypted=encrypt(settings.secret_keys, pem),
        public_key=public_key,
    )
    session.add(key)
    await session.flush()
    return key


async def _save_name(session: AsyncSession, domain: SenderDomain) -> None:
    taken = select(SenderDomain.id).where(
        SenderDomain.enterprise_id == domain.enterprise_id,
        SenderDomain.name == domain.name,
        SenderDomain.id != domain.id,
    )
    if (await session.exec(taken)).first() is not None:
        raise Conflict(f"the sender domain {domain.name} already exists", field="name")
    try:  # two requests racing past the check above
        async with session.begin_nested():
            session.add(domain)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"the sender domain {domain.name} already exists", field="name") from None


async def create_domain(
    session: AsyncSession, *, principal: Principal, settings: Settings, name: str
) -> SenderDomain:
    enterprise_id = principal.require_enterprise()
    normalised = normalise_domain(name)
    count_stmt = (
        select(func.count())
        .select_from(SenderDomain)
        .where(SenderDomain.enterprise_id == enterprise_id)
    )
    if (await session.exec(count_stmt)).one() >= MAX_DOMAINS_PER_ENTERPRISE:
        raise Conflict(
            f"an enterprise can have at most {MAX_DOMAINS_PER_ENTERPRISE} sender domains: "
            "delete one first"
        )
    domain = SenderDomain(
        enterprise_id=enterprise_id,
        name=normalised.ascii,
        next_check_at=utcnow() + timedelta(seconds=settings.domain_recheck_seconds),
    )
    await _save_name(session, domain)
    await _add_key(session, domain=domain, settings=settings)
    return domain


async def get_domain(
    session: AsyncSession, *, principal: Principal, domain_id: str, field: str = "id"
) -> SenderDomain:
    return await owned(
        session,
        SenderDomain,
        domain_id,
        principal=principal,
        message="no such sender domain",
        field=field,
    )


async def update_domain(
    session: AsyncSession, *, principal: Principal, settings: Settings, domain_id: str, name: str
) -> SenderDomain:
    domain = await get_domain(session, principal=principal, domain_id=domain_id)
    normalised = normalise_domain(name)
    if normalised.ascii == domain.name:
        return domain
    # Without autoflush, so a taken name is refused before the row changes at all.
    with session.no_autoflush:
        domain.name = normalised.ascii
        await _save_name(session, domain)
    domain.status = DomainStatus.VERIFICATION_FAILED
    domain.checks = []
    domain.last_verified_at = None
    session.add(domain)
    # A new name is a new identity: retire the old key rather than reuse it under it.
    for key in (await session.exec(select(DkimKey).where(DkimKey.domain_id == domain.id))).all():
        key.active = False
        session.add(key)
    await _add_key(session, domain=domain, settings=settings)
    return domain


async def run_checks(
    session: AsyncSession, domain: SenderDomain, *, settings: Settings, client: DnsClient
) -> list[RecordCheck]:
    key = await active_key(session, domain.id)
    return await check_records(expected_for(domain, key, settings), client=client)


def apply_checks(
    domain: SenderDomain, checks: list[RecordCheck], *, now: datetime, settings: Settings
) -> None:
    domain.checks = [check.to_json() for check in checks]
    domain.status = (
        DomainStatus.VERIFICATION_PASSED if passes(checks) else DomainStatus.VERIFICATION_FAILED
    )
    domain.last_verified_at = now
    domain.next_check_at = now + timedelta(seconds=settings.domain_recheck_seconds)


async def verify_domain(
    session: AsyncSession,
    *,
    principal: Principal,
    settings: Settings,
    domain_id: str,
    client: DnsClient | None = None,
) -> SenderDomain:
    domain = await get_domain(session, principal=principal, domain_id=domain_id)
    checks = await run_checks(
        session, domain, settings=settings, client=client or dns_client(settings)
    )
    apply_checks(domain, checks, now=utcnow(), settings=settings)
    session.add(domain)
    await session.flush()
    return domain


async def delete_domain(
    session: AsyncSession,
    *,
    principal: Principal,
    domain_id: str,
    guards: Sequence[DeleteGuard],
    cascade: bool = False,
) -> str:
    from koomsg.core.addresses.models import SenderAddress

    domain = await get_domain(session, principal=principal, domain_id=domain_id)
    for guard in guards:
        await guard(session, domain)
    count_stmt = (
        select(func.count()).select_from(SenderAddress).where(SenderAddress.domain_id == domain.id)
    )
    addresses = (await session.exec(count_stmt)).one()
    if addresses and not cascade:
        raise Conflict(
            f"the sender domain {domain.name} still has {addresses} sender address(es): delete "
            "them first, or pass cascade: true to delete them with the domain"
        )
    await session.exec(delete(SenderAddress).where(col(SenderAddress.domain_id) == domain.id))  # type: ignore[call-overload]
    await session.exec(delete(DkimKey).where(col(DkimKey.domain_id) == domain.id))  # type: ignore[call-overload]
    await session.delete(domain)
    await session.flush()
    return domain.id


async def list_domains(
    session: AsyncSession,
    *,
    principal: Principal,
    name: str | None = None,
    status: DomainStatus | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[SenderDomain]:
    stmt = select(SenderDomain).where(SenderDomain.enterprise_id == principal.require_enterprise())
    if name:
        stmt = stmt.where(col(SenderDomain.name).contains(_searchable(name), autoescape=True))
    if status is not None:
        stmt = stmt.where(SenderDomain.status == status)
    return await paginate(session, stmt, col(SenderDomain.id), first=first, after=after)


def _searchable(text: str) -> str:
    """A filter typed in Unicode finds the A-label form names are stored in (whole labels)."""
    labels = text.strip().lower().split(".")
    return ".".join(label if label.isascii() else _a_label(label) for label in labels)


def _a_label(label: str) -> str:
    try:
        return str(idna.encode(label, uts46=True).decode("ascii"))
    except idna.IDNAError:
        return label


async def domains_by_ids(session: AsyncSession, ids: list[str]) -> dict[str, SenderDomain]:
    rows = (await session.exec(select(SenderDomain).where(col(SenderDomain.id).in_(ids)))).all()
    return {row.id: row for row in rows}


@dataclass(frozen=True)
class SigningKey:
    domain: str
    selector: str
    private_key_pem: bytes


async def signing_key_for(
    session: AsyncSession, *, settings: Settings, domain_id: str
) -> SigningKey:
    """What delivery signs with; refuses a domain that is not VERIFICATION_PASSED, so mail
    stops when a re-check finds the records gone. Pass the result to ``dkim.sign``."""
    domain = await session.get(SenderDomain, domain_id)
    if domain is None:
        raise NotFound("no such sender domain")
    if domain.status != DomainStatus.VERIFICATION_PASSED:
        raise PreconditionFailed(
            f"the sender domain {domain.name} has not passed verification: fix its DNS records "
            "and verify it again"
        )
    key = await active_key(session, domain.id)
    pem = decrypt(settings.secret_keys, key.private_key_encrypted)
    return SigningKey(domain=domain.name, selector=key.selector, private_key_pem=pem)
