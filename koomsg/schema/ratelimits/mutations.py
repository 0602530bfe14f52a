from __future__ import annotations

import strawberry

from koomsg.core.ratelimits import service as ratelimits
from koomsg.schema.context import Info
from koomsg.schema.tenancy.types import Enterprise


@strawberry.type
class RateLimitMutation:
    @strawberry.mutation(
        description="Operators: size an enterprise's API rate limit (all its keys together): "
        "requestsPerSecond 1 to 100 000, burst 1 to 1 000 000. Every process applies it from "
        "the enterprise's next request."
    )
    async def set_enterprise_rate_limit(
        self, info: Info, enterprise_id: strawberry.ID, requests_per_second: int, burst: int
    ) -> Enterprise:
        async with info.context.write("KooMessage:enterpriseRateLimit:update") as (session, _):
            row = await ratelimits.set_enterprise_rate_limit(
                session,
                enterprise_id=enterprise_id,
                requests_per_second=requests_per_second,
                burst=burst,
            )
            return Enterprise.from_row(row)
