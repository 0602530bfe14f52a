from __future__ import annotations

from datetime import datetime

import strawberry

from koomsg.core.principal import PrincipalKind as CorePrincipalKind
from koomsg.core.ratelimits.service import effective_limit
from koomsg.core.tenancy.models import Enterprise as EnterpriseRow
from koomsg.core.tenancy.models import IndustryClass as CoreIndustryClass
from koomsg.schema.common import Node
from koomsg.schema.ratelimits.types import RateLimit

# strawberry.enum registers the core enums themselves, so both layers share one type.
IndustryClass = CoreIndustryClass
PrincipalKind = CorePrincipalKind
strawberry.enum(
    IndustryClass, description="SENSITIVE enterprises have every template reviewed by an operator."
)
strawberry.enum(PrincipalKind, description="What kind of key made the request.")


@strawberry.type(description="A customer of the platform; every resource belongs to one.")
class Enterprise(Node):
    id: strawberry.ID
    name: str
    real_name_verified: bool = strawberry.field(
        description="Real-name authentication done: required to enable the service."
    )
    industry_class: IndustryClass
    service_enabled: bool = strawberry.field(description="KooMessage enabled (terms accepted).")
    created_at: datetime
    suspended: bool = strawberry.field(
        default=False,
        description="Suspended by an operator: mutations answer SUSPENDED, sending waits.",
    )
    suspended_reason: str | None = strawberry.field(
        default=None, description="Why, as the operator wrote it; null when not suspended."
    )
    _row: strawberry.Private[EnterpriseRow | None] = None

    @strawberry.field(
        description="The API rate limit of all the enterprise's keys together: the operators' "
        "override (setEnterpriseRateLimit), else KOOMSG_RATE_LIMIT_RPS / KOOMSG_RATE_LIMIT_BURST."
    )
    def rate_limit(self, info: strawberry.Info) -> RateLimit:
        defaults = info.context.runtime.rate_limiter.defaults
        assert self._row is not None, "Enterprise objects are built with from_row"
        return RateLimit.from_core(effective_limit(self._row, defaults))

    @classmethod
    def from_row(cls, row: EnterpriseRow) -> Enterprise:
        return cls(
            _row=row,
            id=strawberry.ID(row.id),
            name=row.name,
            real_name_verified=row.real_name_verified,
            industry_class=row.industry_class,
            service_enabled=row.service_enabled,
            created_at=row.created_at,
            suspended=row.suspended_at is not None,
            suspended_reason=row.suspended_reason,
        )


@strawberry.type(description="The caller, as identified by its access key.")
class Principal:
    kind: PrincipalKind
    name: str
    enterprise: Enterprise | None
