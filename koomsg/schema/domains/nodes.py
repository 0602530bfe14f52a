from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.domains import service as domains
from koomsg.core.principal import Principal
from koomsg.schema.domains.queries import to_type
from koomsg.schema.domains.types import SenderDomain
from koomsg.schema.node import register_node


async def _domain(session: AsyncSession, principal: Principal, ident: str) -> SenderDomain:
    return await to_type(
        session, await domains.get_domain(session, principal=principal, domain_id=ident)
    )


register_node("dom", "KooMessage:senderDomain:list", _domain)
