from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.principal import Principal
from koomsg.core.templates import service as templates
from koomsg.core.templates.public import get_public
from koomsg.runtime import Runtime
from koomsg.schema.node import register_node
from koomsg.schema.templates.types import Template


async def _template(session: AsyncSession, principal: Principal, ident: str) -> Template:
    return Template.from_row(
        await templates.get_template(session, principal=principal, template_id=ident)
    )


async def _public(
    session: AsyncSession, principal: Principal, ident: str, runtime: Runtime
) -> Template:
    principal.require_enterprise()
    return Template.from_row(get_public(await runtime.public_templates(), ident, field="id"))


register_node("tpl", "KooMessage:template:list", _template)
register_node("pub", "KooMessage:template:list", _public, with_runtime=True)
