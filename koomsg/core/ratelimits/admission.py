"""The one rule every API and public request passes before anything runs.

- no key: the client address's bucket;
- a key: first, is this address still allowed to try keys (failed
  authentications are limited per address, so keys cannot be guessed at full
  speed: once its failures are spent, even a right key waits)? Then the key
  is checked: a wrong one spends a failure token and goes on to be refused
  as UNAUTHENTICATED by the API; a valid one spends a token of its
  enterprise's bucket (or the operators').

Over any limit: ``RateLimited``, before any resolver runs.
"""

from __future__ import annotations

from koomsg.core.db import Database
from koomsg.core.errors import Unauthenticated
from koomsg.core.iam import keys
from koomsg.core.principal import Principal
from koomsg.core.ratelimits import limiter as names
from koomsg.core.ratelimits.limiter import RateLimiter
from koomsg.core.ratelimits.service import bucket_for


async def admit(
    db: Database, limiter: RateLimiter, *, bearer: str | None, address: str
) -> Principal | None:
    """The authenticated principal (None without a valid key), or RateLimited."""
    if bearer is None:
        await limiter.take(names.address_key(address), limiter.defaults, "unauthenticated requests")
        return None
    failures = names.auth_failure_key(address)
    what = "failed authentications from your address"
    await limiter.check(failures, limiter.auth_failures, what)
    try:
        async with db.session() as session:
            principal = await keys.authenticate(session, bearer)
            bucket = await bucket_for(session, principal=principal, defaults=limiter.defaults)
    except Unauthenticated:
        await limiter.take(failures, limiter.auth_failures, what)
        return None
    what = "operator keys" if principal.enterprise_id is None else "the enterprise's keys"
    await limiter.take(names.principal_key(principal), bucket, what)
    return principal
