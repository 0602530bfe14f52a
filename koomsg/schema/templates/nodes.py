from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.principal import Principal
from koomsg.core.templates import service as templates
from koomsg.schema.node import register_node
from koomsg.schema.templates.types import Template


async def _template(session: AsyncSession, principal: Principal, ident: str) -> Template:
    return Template.from_row(
        await templates.get_template(session, principal=principal, template_id=ident)
    )


register_node("tpl", "KooMessage:template:list", _template)
