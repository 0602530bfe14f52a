from __future__ import annotations

from typing import Any

import strawberry

from koomsg.core import flows
from koomsg.core.templates import review
from koomsg.core.templates import service as templates
from koomsg.core.templates.content import HtmlFile
from koomsg.core.templates.models import BodyType
from koomsg.core.templates.sanitize import MAX_BODY_BYTES
from koomsg.schema.context import Info
from koomsg.schema.templates.types import CreateTemplateInput, Template, UpdateTemplateInput


async def read_html_file(upload: Any) -> HtmlFile | None:
    """The upload's name and no more than one byte past the limit: enough to refuse it."""
    if upload is None:
        return None
    data = await upload.read(MAX_BODY_BYTES + 1)
    return HtmlFile(filename=upload.filename or "", data=data)


@strawberry.type
class TemplateMutation:
    @strawberry.mutation(
        description="Create a template; it is reviewed at once (see TemplateStatus)."
    )
    async def create_template(self, info: Info, input: CreateTemplateInput) -> Template:
        html_file = await read_html_file(input.html_file)
        async with info.context.write("KooMessage:template:create") as (session, principal):
            row = await templates.create_template(
                session,
                principal=principal,
                plugins=info.context.runtime.plugins,
                name=input.name,
                body_type=BodyType(input.body_type),
                body=input.body,
                html_file=html_file,
                support_unsubscribe=input.support_unsubscribe,
            )
            return Template.from_row(row)

    @strawberry.mutation(
        description="Edit a template: a new revision, reviewed like a new template. Until it "
        "is approved, tasks and sendEmail keep using the approved revision."
    )
    async def update_template(
        self, info: Info, id: strawberry.ID, input: UpdateTemplateInput
    ) -> Template:
        html_file = await read_html_file(input.html_file)
        async with info.context.write("KooMessage:template:update") as (session, principal):
            row = await templates.update_template(
                session,
                principal=principal,
                plugins=info.context.runtime.plugins,
                template_id=id,
                name=input.name,
                body_type=BodyType(input.body_type) if input.body_type else None,
                body=input.body,
                html_file=html_file,
                support_unsubscribe=input.support_unsubscribe,
            )
            return Template.from_row(row)

    @strawberry.mutation(
        description="Copy one of your templates or a public one into a new, editable template. "
        'Without a name the copy is called "<title> (copy)".'
    )
    async def copy_template(
        self, info: Info, id: strawberry.ID, name: str | None = None
    ) -> Template:
        async with info.context.write("KooMessage:template:create") as (session, principal):
            row = await templates.copy_template(
                session,
                principal=principal,
                plugins=info.context.runtime.plugins,
                public=await info.context.runtime.public_templates(),
                template_id=id,
                name=name,
            )
            return Template.from_row(row)

    @strawberry.mutation(
        description="Delete a template. Refused (CONFLICT) while an unfinished task uses it."
    )
    async def delete_template(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        async with info.context.write("KooMessage:template:delete") as (session, principal):
            return strawberry.ID(
                await flows.delete_template(session, principal=principal, template_id=id)
            )

    @strawberry.mutation(
        description="Operators: approve a template revision waiting for review (without "
        "`revision`: the latest). From then on new tasks and sendEmail use it."
    )
    async def approve_template(
        self,
        info: Info,
        id: strawberry.ID,
        comment: str | None = None,
        revision: int | None = None,
    ) -> Template:
        async with info.context.write("KooMessage:templateReview:approve") as (session, principal):
            row = await review.approve_template(
                session, principal=principal, template_id=id, comment=comment, revision=revision
            )
            return Template.from_row(row)

    @strawberry.mutation(
        description="Operators: reject a template revision waiting for review (without "
        "`revision`: the latest); the comment says why. An earlier approved revision keeps "
        "sending."
    )
    async def reject_template(
        self, info: Info, id: strawberry.ID, comment: str, revision: int | None = None
    ) -> Template:
        async with info.context.write("KooMessage:templateReview:reject") as (session, principal):
            row = await review.reject_template(
                session, principal=principal, template_id=id, comment=comment, revision=revision
            )
            return Template.from_row(row)
