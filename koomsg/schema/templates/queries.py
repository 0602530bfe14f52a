from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from koomsg.core.templates import review
from koomsg.core.templates import service as templates
from koomsg.schema.common import Connection, to_connection
from koomsg.schema.context import Info
from koomsg.schema.templates.types import RenderedEmail, Template, TemplateFilter, core_filter


@strawberry.type
class TemplateQuery:
    @strawberry.field(description="The enterprise's own templates, newest first.")
    async def templates(
        self,
        info: Info,
        filter: TemplateFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Template]:
        async with info.context.read("KooMessage:template:list") as (session, principal):
            page = await templates.list_templates(
                session, principal=principal, filter=core_filter(filter), first=first, after=after
            )
            return to_connection(page, Template.from_row)

    @strawberry.field(description="Built-in templates every enterprise can preview and copy.")
    async def public_templates(
        self,
        info: Info,
        filter: TemplateFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Template]:
        async with info.context.read("KooMessage:template:list") as (_, principal):
            principal.require_enterprise()
            offered = await info.context.runtime.public_templates()
            page = templates.list_public_templates(
                offered, filter=core_filter(filter), first=first, after=after
            )
            return to_connection(page, Template.from_row)

    @strawberry.field(
        description="Render a template (own or public) as delivery would. Parameters left out of "
        "`params` show as [name]; the unsubscribe link points to a placeholder URL."
    )
    async def preview_template(
        self, info: Info, id: strawberry.ID, params: JSON | None = None, subject: str | None = None
    ) -> RenderedEmail:
        async with info.context.read("KooMessage:template:list") as (session, principal):
            runtime = info.context.runtime
            rendered = await templates.preview_template(
                session,
                principal=principal,
                public=await runtime.public_templates(),
                template_id=id,
                params=params,
                subject=subject,
                public_url=runtime.settings.public_url,
            )
            return RenderedEmail.from_core(rendered)

    @strawberry.field(description="Operators: templates of every enterprise waiting for review.")
    async def templates_awaiting_review(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Template]:
        async with info.context.read("KooMessage:templateReview:list") as (session, _):
            page = await review.list_awaiting_review(session, first=first, after=after)
            return to_connection(page, Template.from_row)
