from __future__ import annotations

import strawberry

from koomsg.core.iam import keys
from koomsg.core.principal import PrincipalKind
from koomsg.core.tenancy import service as tenancy
from koomsg.schema.context import Info
from koomsg.schema.iam.types import AccessKey
from koomsg.schema.tenancy.types import Enterprise, IndustryClass


@strawberry.input
class CreateEnterpriseInput:
    name: str
    real_name_verified: bool
    industry_class: IndustryClass


@strawberry.type
class TenancyMutation:
    @strawberry.mutation(description="Operators: register an enterprise.")
    async def create_enterprise(self, info: Info, input: CreateEnterpriseInput) -> Enterprise:
        async with info.context.write("KooMessage:enterprise:create") as (session, _):
            row = await tenancy.create_enterprise(
                session,
                name=input.name,
                real_name_verified=input.real_name_verified,
                industry_class=input.industry_class,
            )
            return Enterprise.from_row(row)

    @strawberry.mutation(
        description="Operators: record real-name verification and the industry class."
    )
    async def set_enterprise_verification(
        self,
        info: Info,
        enterprise_id: strawberry.ID,
        real_name_verified: bool,
        industry_class: IndustryClass,
    ) -> Enterprise:
        async with info.context.write("KooMessage:enterprise:verify") as (session, _):
            row = await tenancy.set_verification(
                session,
                enterprise_id=enterprise_id,
                real_name_verified=real_name_verified,
                industry_class=industry_class,
            )
            return Enterprise.from_row(row)

    @strawberry.mutation(
        description="Operators: create an enterprise's root access key. The secret is shown only now."
    )
    async def create_enterprise_root_key(
        self, info: Info, enterprise_id: strawberry.ID
    ) -> AccessKey:
        async with info.context.write("KooMessage:enterpriseKey:create") as (session, _):
            enterprise = await tenancy.get_enterprise(session, enterprise_id=enterprise_id)
            key, secret = await keys.issue_key(
                session,
                kind=PrincipalKind.ENTERPRISE_ROOT,
                name=enterprise.name,
                enterprise_id=enterprise.id,
            )
            return AccessKey.from_row(key, secret=secret)

    @strawberry.mutation(
        description="Enable KooMessage: accept the service usage statement. "
        "The enterprise must be real-name verified."
    )
    async def enable_service(self, info: Info, accept_terms: bool) -> Enterprise:
        async with info.context.write("KooMessage:service:enable") as (session, principal):
            row = await tenancy.enable_service(
                session, principal=principal, accept_terms=accept_terms
            )
            return Enterprise.from_row(row)
