from __future__ import annotations

import strawberry

from koomsg.core.recipients.sample import sample_url
from koomsg.core.templates import service as templates
from koomsg.core.templates.public import get_public, is_public_id
from koomsg.schema.context import Info


@strawberry.type
class RecipientQuery:
    @strawberry.field(
        description="A link (valid for 10 minutes) to an .xlsx sample recipient file for the "
        "template: a header row of `email` and one column per template parameter, and one "
        "example row. Fill it in and upload it as a sending task's recipientFile."
    )
    async def recipient_sample_file(self, info: Info, template_id: strawberry.ID) -> str:
        async with info.context.read("KooMessage:devSendTask:list") as (session, principal):
            runtime = info.context.runtime
            if is_public_id(template_id):
                principal.require_enterprise()
                params = get_public(
                    await runtime.public_templates(), template_id, field="templateId"
                ).params
            else:
                params = await templates.sending_params(
                    session, principal=principal, template_id=template_id
                )
            return sample_url(
                keys=runtime.settings.secret_keys,
                public_url=runtime.settings.public_url,
                template_id=str(template_id),
                params=list(params),
            )
