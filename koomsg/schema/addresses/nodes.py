from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.addresses import service as addresses
from koomsg.core.principal import Principal
from koomsg.schema.addresses.queries import to_type
from koomsg.schema.addresses.types import SenderAddress
from koomsg.schema.node import register_node


async def _address(session: AsyncSession, principal: Principal, ident: str) -> SenderAddress:
    return await to_type(
        session, await addresses.get_address(session, principal=principal, address_id=ident)
    )


register_node("adr", "KooMessage:senderAddress:list", _address)
