"""Per-enterprise rate limits: the operators' override and the bucket it sizes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import BadInput
from koomsg.core.principal import Principal
from koomsg.core.ratelimits.bucket import Bucket
from koomsg.core.tenancy.models import Enterprise
from koomsg.core.tenancy.service import get_enterprise

MAX_REQUESTS_PER_SECOND = 100_000
MAX_BURST = 1_000_000


@dataclass(frozen=True)
class RateLimit:
    requests_per_second: int
    burst: int


def effective_limit(enterprise: Enterprise, defaults: Bucket) -> RateLimit:
    """The enterprise's override, else the defaults."""
    return RateLimit(
        requests_per_second=enterprise.rate_limit_rps or int(defaults.rate),
        burst=enterprise.rate_limit_burst or defaults.burst,
    )


async def bucket_for(session: AsyncSession, *, principal: Principal, defaults: Bucket) -> Bucket:
    """The bucket ``principal``'s requests spend from (operators: the defaults)."""
    if principal.enterprise_id is None:
        return defaults
    enterprise = await session.get(Enterprise, principal.enterprise_id)
    if enterprise is None:
        return defaults
    limit = effective_limit(enterprise, defaults)
    return Bucket(rate=limit.requests_per_second, burst=limit.burst)


def _check(field: str, value: int, largest: int) -> None:
    if not 1 <= value <= largest:
        raise BadInput(field, f"{field} is a whole number from 1 to {largest:,}, got {value}")


async def set_enterprise_rate_limit(
    session: AsyncSession, *, enterprise_id: str, requests_per_second: int, burst: int
) -> Enterprise:
    """Operators: size an enterprise's bucket; every process uses it from its next request."""
    _check("requestsPerSecond", requests_per_second, MAX_REQUESTS_PER_SECOND)
    _check("burst", burst, MAX_BURST)
    enterprise = await get_enterprise(session, enterprise_id=enterprise_id)
    enterprise.rate_limit_rps = requests_per_second
    enterprise.rate_limit_burst = burst
    session.add(enterprise)
    await session.flush()
    return enterprise
