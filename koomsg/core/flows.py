"""Operations that span areas, wired here in the open rather than by registration at import.

Deleting a sender domain or a template first asks the areas that use them:
each guard raises Conflict naming what still needs the object. To make a new
area keep domains or templates in use, add its guard to the tuple below.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.domains import service as domains
from koomsg.core.principal import Principal
from koomsg.core.tasks import service as tasks
from koomsg.core.templates import service as templates

# A domain stays while an unfinished sending task sends from it.
DOMAIN_DELETE_GUARDS: tuple[domains.DeleteGuard, ...] = (tasks.guard_domain,)
# A template stays while an unfinished sending task uses it.
TEMPLATE_DELETE_GUARDS: tuple[templates.DeleteGuard, ...] = (tasks.guard_template,)


async def delete_sender_domain(
    session: AsyncSession, *, principal: Principal, domain_id: str, cascade: bool = False
) -> str:
    return await domains.delete_domain(
        session,
        principal=principal,
        domain_id=domain_id,
        guards=DOMAIN_DELETE_GUARDS,
        cascade=cascade,
    )


async def delete_template(session: AsyncSession, *, principal: Principal, template_id: str) -> str:
    return await templates.delete_template(
        session, principal=principal, template_id=template_id, guards=TEMPLATE_DELETE_GUARDS
    )
