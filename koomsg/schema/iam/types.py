from __future__ import annotations

from datetime import datetime

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from strawberry.scalars import JSON

from koomsg.core.iam import models
from koomsg.core.iam import service as iam
from koomsg.core.tenancy import service as tenancy
from koomsg.schema.common import Node
from koomsg.schema.context import Info, loader
from koomsg.schema.tenancy.types import Enterprise, Principal, PrincipalKind


async def _groups_of(session: AsyncSession, user_ids: list[str]) -> list[list[IamGroup]]:
    found = await iam.groups_of_users(session, user_ids)
    return [[IamGroup.from_row(g) for g in found[uid]] for uid in user_ids]


async def _users_of(session: AsyncSession, group_ids: list[str]) -> list[list[IamUser]]:
    found = await iam.users_of_groups(session, group_ids)
    return [[IamUser.from_row(u) for u in found[gid]] for gid in group_ids]


async def _policies_of(session: AsyncSession, group_ids: list[str]) -> list[list[Policy]]:
    found = await iam.policies_of_groups(session, group_ids)
    return [[Policy.from_row(p) for p in found[gid]] for gid in group_ids]


@strawberry.type(description="A person or program of the enterprise with its own access keys.")
class IamUser(Node):
    id: strawberry.ID
    name: str
    created_at: datetime

    @strawberry.field(
        description="Groups the user belongs to; their policies grant its permissions."
    )
    async def groups(self, info: Info) -> list[IamGroup]:
        return await loader(info, "iam.groups_of_user", _groups_of).load(self.id)  # type: ignore[no-any-return]

    @classmethod
    def from_row(cls, row: models.IamUser) -> IamUser:
        return cls(id=strawberry.ID(row.id), name=row.name, created_at=row.created_at)


@strawberry.type(description="Users who share the policies attached to the group.")
class IamGroup(Node):
    id: strawberry.ID
    name: str

    @strawberry.field
    async def users(self, info: Info) -> list[IamUser]:
        return await loader(info, "iam.users_of_group", _users_of).load(self.id)  # type: ignore[no-any-return]

    @strawberry.field
    async def policies(self, info: Info) -> list[Policy]:
        return await loader(info, "iam.policies_of_group", _policies_of).load(self.id)  # type: ignore[no-any-return]

    @classmethod
    def from_row(cls, row: models.IamGroup) -> IamGroup:
        return cls(id=strawberry.ID(row.id), name=row.name)


@strawberry.type(description='A permission document: {"Version": "1.1", "Statement": [...]}.')
class Policy(Node):
    id: strawberry.ID
    name: str
    system: bool = strawberry.field(description='Built in, e.g. "KooMessage FullAccess".')
    document: JSON

    @classmethod
    def from_row(cls, row: models.Policy) -> Policy:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            system=row.system,
            document=row.document,  # type: ignore[arg-type]
        )


async def _enterprises(session: AsyncSession, ids: list[str]) -> list[Enterprise]:
    # Keys listed together belong to one enterprise: one look-up per batch in practice.
    return [
        Enterprise.from_row(await tenancy.get_enterprise(session, enterprise_id=i)) for i in ids
    ]


@strawberry.type(
    description="A bearer credential. Send `Authorization: Bearer <secret>`. "
    "Its metadata is listed by `accessKeys`; the secret never is."
)
class AccessKey:
    id: strawberry.ID
    key_id: str = strawberry.field(
        description="The public part of the secret (before the dot): safe to show and log."
    )
    name: str = strawberry.field(description="The owner's name when the key was created.")
    secret: str | None = strawberry.field(description="Shown once, at creation; null afterwards.")
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(
        description="When the key last authenticated, to the minute (recorded at most once "
        "a minute, just after the request). Null: never used."
    )
    revoked_at: datetime | None = strawberry.field(
        description="When the key was revoked; from then on it authenticates nowhere."
    )
    owner_kind: strawberry.Private[PrincipalKind]
    enterprise_id: strawberry.Private[str | None]

    @strawberry.field(
        description="Whose key it is: an operator, an enterprise root or an IAM user."
    )
    async def owner(self, info: Info) -> Principal:
        enterprise = None
        if self.enterprise_id is not None:
            enterprise = await loader(info, "tenancy.enterprises", _enterprises).load(
                self.enterprise_id
            )
        return Principal(kind=self.owner_kind, name=self.name, enterprise=enterprise)

    @classmethod
    def from_row(cls, row: models.AccessKey, *, secret: str | None = None) -> AccessKey:
        return cls(
            id=strawberry.ID(row.id),
            key_id=row.id,
            name=row.name,
            secret=secret,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            owner_kind=PrincipalKind(row.kind),
            enterprise_id=row.enterprise_id,
        )


@strawberry.type(description="How the policies decide one action for one user.")
class PolicyDecision:
    action: str
    allowed: bool
    effect: str = strawberry.field(description='"Allow", "Deny" (explicit) or "ImplicitDeny".')
    policy_name: str | None
    statement_index: int | None
    matched_action: str | None = strawberry.field(
        description="The pattern in the statement that matched."
    )
    explanation: str
