from __future__ import annotations

import strawberry

from koomsg.core.addresses import service as addresses
from koomsg.schema.addresses.queries import to_type
from koomsg.schema.addresses.types import CreateSenderAddressInput, SenderAddress
from koomsg.schema.context import Info


@strawberry.type
class AddressMutation:
    @strawberry.mutation(description="Add a sender address on a verified sender domain.")
    async def create_sender_address(
        self, info: Info, input: CreateSenderAddressInput
    ) -> SenderAddress:
        async with info.context.write("KooMessage:senderAddress:create") as (session, principal):
            row = await addresses.create_address(
                session,
                principal=principal,
                domain_id=input.domain_id,
                prefix=input.prefix,
                alias=input.alias,
            )
            return await to_type(session, row)

    @strawberry.mutation
    async def delete_sender_address(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        async with info.context.write("KooMessage:senderAddress:delete") as (session, principal):
            return strawberry.ID(
                await addresses.delete_address(session, principal=principal, address_id=id)
            )
