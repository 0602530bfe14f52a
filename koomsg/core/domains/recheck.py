"""The periodic re-check: domains whose records disappeared stop passing (and sending).

Several processes may run it at once: each claims a domain by moving its
``next_check_at`` forward with a conditional update, so only one checks it.
DNS is looked up outside any transaction.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select

from koomsg.config import Settings
from koomsg.core.clock import utcnow
from koomsg.core.db import Database
from koomsg.core.domains.models import SenderDomain
from koomsg.core.domains.service import active_key, apply_checks, dns_client, expected_for
from koomsg.core.domains.verify import DnsClient, check_records

BATCH = 50
CONCURRENCY = 10


async def _claim(db: Database, *, now: datetime, settings: Settings, limit: int) -> list[str]:
    async with db.session() as session:
        stmt = select(SenderDomain.id, SenderDomain.next_check_at).where(
            col(SenderDomain.next_check_at) <= now
        )
        due = (
            await session.exec(stmt.order_by(col(SenderDomain.next_check_at)).limit(limit))
        ).all()
    claimed = []
    later = now + timedelta(seconds=settings.domain_recheck_seconds)
    for domain_id, seen in due:
        async with db.transaction() as session:
            result = await session.execute(
                update(SenderDomain)
                .where(col(SenderDomain.id) == domain_id, col(SenderDomain.next_check_at) == seen)
                .values(next_check_at=later)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(domain_id)
    return claimed


async def _recheck_one(
    db: Database, domain_id: str, *, now: datetime, settings: Settings, client: DnsClient
) -> None:
    async with db.session() as session:
        domain = await session.get(SenderDomain, domain_id)
        if domain is None:
            return
        name = domain.name
        records = expected_for(domain, await active_key(session, domain_id), settings)
    checks = await check_records(records, client=client)
    async with db.transaction() as session:
        domain = await session.get(SenderDomain, domain_id)
        # Renamed or deleted while DNS was asked: these results describe another zone.
        if domain is None or domain.name != name:
            return
        apply_checks(domain, checks, now=now, settings=settings)
        session.add(domain)


async def recheck_due_domains(
    db: Database,
    *,
    settings: Settings,
    now: datetime | None = None,
    client: DnsClient | None = None,
    limit: int = BATCH,
) -> int:
    """One pass: re-verify up to ``limit`` domains due at ``now``; returns how many."""
    now = now or utcnow()
    client = client or dns_client(settings)
    claimed = await _claim(db, now=now, settings=settings, limit=limit)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run(domain_id: str) -> None:
        async with gate:
            await _recheck_one(db, domain_id, now=now, settings=settings, client=client)

    await asyncio.gather(*(run(domain_id) for domain_id in claimed))
    return len(claimed)
