"""Per-request batch loaders for the fields of sending tasks and sending details."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.addresses.models import SenderAddress as SenderAddressRow
from koomsg.core.domains.models import SenderDomain
from koomsg.core.tasks import service as tasks
from koomsg.core.tasks.import_errors import ErrorPage, error_pages
from koomsg.core.templates.models import Template as TemplateRow


async def templates_by_id(session: AsyncSession, ids: list[str]) -> list[TemplateRow | None]:
    rows = (await session.exec(select(TemplateRow).where(col(TemplateRow.id).in_(ids)))).all()
    found = {row.id: row for row in rows}
    return [found.get(i) for i in ids]


async def senders_by_id(
    session: AsyncSession, ids: list[str]
) -> list[tuple[SenderAddressRow, str] | None]:
    stmt = (
        select(SenderAddressRow, SenderDomain.name)
        .join(SenderDomain, col(SenderDomain.id) == SenderAddressRow.domain_id)
        .where(col(SenderAddressRow.id).in_(ids))
    )
    found = {row.id: (row, name) for row, name in (await session.exec(stmt)).all()}
    return [found.get(i) for i in ids]


async def counts_by_task(session: AsyncSession, ids: list[str]) -> list[tasks.TaskCounts]:
    found = await tasks.counts_for(session, ids)
    return [found[i] for i in ids]


async def import_error_pages(session: AsyncSession, pages: list[ErrorPage]) -> list[list[Any]]:
    found = await error_pages(session, pages)
    return [found[page] for page in pages]


async def tasks_by_id(session: AsyncSession, ids: list[str]) -> list[Any]:
    found = await tasks.tasks_by_ids(session, ids)
    return [found.get(i) for i in ids]
