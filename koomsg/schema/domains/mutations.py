from __future__ import annotations

import strawberry

from koomsg.core import flows
from koomsg.core.domains import service as domains
from koomsg.schema.context import Info
from koomsg.schema.domains.queries import to_type
from koomsg.schema.domains.types import CreateSenderDomainInput, SenderDomain


@strawberry.type
class DomainMutation:
    @strawberry.mutation(
        description="Add a sender domain (at most 10). It gets its own DKIM key; publish the "
        "records it lists, then call verifySenderDomain."
    )
    async def create_sender_domain(
        self, info: Info, input: CreateSenderDomainInput
    ) -> SenderDomain:
        settings = info.context.runtime.settings
        async with info.context.write("KooMessage:senderDomain:create") as (session, principal):
            row = await domains.create_domain(
                session, principal=principal, settings=settings, name=input.name
            )
            return await to_type(session, row)

    @strawberry.mutation(
        description="Rename a sender domain: it gets a new DKIM key and must be verified again."
    )
    async def update_sender_domain(
        self, info: Info, id: strawberry.ID, input: CreateSenderDomainInput
    ) -> SenderDomain:
        settings = info.context.runtime.settings
        async with info.context.write("KooMessage:senderDomain:update") as (session, principal):
            row = await domains.update_domain(
                session, principal=principal, settings=settings, domain_id=id, name=input.name
            )
            return await to_type(session, row)

    @strawberry.mutation(
        description="Look the domain's records up in DNS now and store the outcome. The domain "
        "passes when every required record is found as expected."
    )
    async def verify_sender_domain(self, info: Info, id: strawberry.ID) -> SenderDomain:
        settings = info.context.runtime.settings
        async with info.context.write("KooMessage:senderDomain:verify") as (session, principal):
            row = await domains.verify_domain(
                session, principal=principal, settings=settings, domain_id=id
            )
            return await to_type(session, row)

    @strawberry.mutation(
        description="Delete a sender domain. Refused while it has sender addresses, unless "
        "cascade is true (they are deleted with it), and while a scheduled task still uses it."
    )
    async def delete_sender_domain(
        self, info: Info, id: strawberry.ID, cascade: bool | None = False
    ) -> strawberry.ID:
        async with info.context.write("KooMessage:senderDomain:delete") as (session, principal):
            deleted = await flows.delete_sender_domain(
                session, principal=principal, domain_id=id, cascade=bool(cascade)
            )
            return strawberry.ID(deleted)
