"""Per-request batch loaders for the fields of templates."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.templates import revisions
from koomsg.core.templates.models import TemplateRevision


async def revisions_by_template(
    session: AsyncSession, ids: list[str]
) -> list[list[TemplateRevision]]:
    # Only reached through a Template the caller was allowed to read (tenancy checked there).
    found = await revisions.revisions_for(session, ids)
    return [found[i] for i in ids]
