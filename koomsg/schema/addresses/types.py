from __future__ import annotations

from datetime import datetime

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.addresses import models
from koomsg.core.domains import service as domains
from koomsg.schema.common import Node
from koomsg.schema.context import Info, loader
from koomsg.schema.domains.types import SenderDomain


async def _domains_of(session: AsyncSession, domain_ids: list[str]) -> list[SenderDomain]:
    rows = await domains.domains_by_ids(session, domain_ids)
    keys = await domains.active_keys(session, list(rows))
    return [SenderDomain.from_row(rows[i], keys[i]) for i in domain_ids]


@strawberry.type(description="An address mail is sent from: prefix@domain, with an optional alias.")
class SenderAddress(Node):
    id: strawberry.ID
    prefix: str = strawberry.field(description='The part before "@".')
    alias: str | None = strawberry.field(
        description="The display name recipients see next to the address."
    )
    address: str = strawberry.field(description='prefix + "@" + the domain\'s name.')
    created_at: datetime
    domain_id: strawberry.Private[str]

    @strawberry.field
    async def domain(self, info: Info) -> SenderDomain:
        return await loader(info, "domains.by_id", _domains_of).load(self.domain_id)  # type: ignore[no-any-return]

    @classmethod
    def from_row(cls, row: models.SenderAddress, domain_name: str) -> SenderAddress:
        return cls(
            id=strawberry.ID(row.id),
            prefix=row.prefix,
            alias=row.alias,
            address=f"{row.prefix}@{domain_name}",
            created_at=row.created_at,
            domain_id=row.domain_id,
        )


@strawberry.input(description="Narrow the list of sender addresses.")
class SenderAddressFilter:
    address: str | None = strawberry.field(default=None, description="Part of the address.")


@strawberry.input
class CreateSenderAddressInput:
    domain_id: strawberry.ID = strawberry.field(
        description="A sender domain that passed verification."
    )
    prefix: str = strawberry.field(
        description='The part before "@": letters, digits and !#$%&\'*+-/=?^_`{|}~, dots between '
        "them, at most 64 characters."
    )
    alias: str | None = strawberry.field(
        default=None,
        description="Optional display name, at most 64 characters, no line breaks.",
    )
