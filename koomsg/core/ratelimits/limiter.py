"""Which bucket a request spends from, and with which size.

- each enterprise: one bucket for all its keys (root and IAM users together),
  sized by its override (``setEnterpriseRateLimit``) or the defaults
  ``KOOMSG_RATE_LIMIT_RPS`` / ``KOOMSG_RATE_LIMIT_BURST``;
- operators: one bucket for all operator keys, with the defaults;
- unauthenticated requests: one bucket per client address, with the defaults;
- failed authentications: one bucket per client address of
  ``KOOMSG_AUTH_FAILURES_PER_MINUTE`` tokens, refilled over a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from koomsg.config import Settings
from koomsg.core.db import Database
from koomsg.core.principal import Principal
from koomsg.core.ratelimits.bucket import Bucket, RateLimited, whole_seconds
from koomsg.core.ratelimits.database import DatabaseStore
from koomsg.core.ratelimits.redis_store import RedisStore
from koomsg.core.ratelimits.stores import BucketStore, MemoryStore

OPERATORS_KEY = "operators"


def enterprise_key(enterprise_id: str) -> str:
    return f"enterprise:{enterprise_id}"


def address_key(address: str) -> str:
    return f"address:{address}"


def auth_failure_key(address: str) -> str:
    return f"auth-failures:{address}"


def principal_key(principal: Principal) -> str:
    if principal.enterprise_id is None:
        return OPERATORS_KEY
    return enterprise_key(principal.enterprise_id)


class RateLimiter:
    """Spends tokens in one store; ``clock`` (Unix seconds) is a seam for tests."""

    def __init__(
        self,
        store: BucketStore,
        *,
        defaults: Bucket,
        auth_failures: Bucket,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.defaults = defaults
        self.auth_failures = auth_failures
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> RateLimiter:
        return cls(
            make_store(settings, db),
            defaults=Bucket(rate=settings.rate_limit_rps, burst=settings.rate_limit_burst),
            auth_failures=Bucket(
                rate=settings.auth_failures_per_minute / 60.0,
                burst=settings.auth_failures_per_minute,
            ),
        )

    async def take(self, key: str, bucket: Bucket, what: str) -> None:
        """Spend one token of ``key``, or raise RateLimited saying ``what`` is limited."""
        verdict = await self.store.take(key, bucket, self.clock())
        if not verdict.allowed:
            raise _limited(what, bucket, verdict.retry_after)

    async def check(self, key: str, bucket: Bucket, what: str) -> None:
        """Raise RateLimited when ``key`` has no token left, without spending one."""
        verdict = await self.store.peek(key, bucket, self.clock())
        if not verdict.allowed:
            raise _limited(what, bucket, verdict.retry_after)

    async def close(self) -> None:
        await self.store.close()


def _limited(what: str, bucket: Bucket, retry_after: float) -> RateLimited:
    rate = f"{bucket.rate:g} a second" if bucket.rate >= 1 else f"{bucket.rate * 60:g} a minute"
    wait = whole_seconds(retry_after)
    return RateLimited(
        f"rate limit of {what} exceeded ({rate}, bursts of {bucket.burst}): "
        f"nothing was executed; retry after {wait} s",
        retry_after=retry_after,
    )


def make_store(settings: Settings, db: Database) -> BucketStore:
    if settings.rate_limit_storage == "redis" and settings.broker_url:
        return RedisStore(settings.broker_url)
    if settings.rate_limit_storage == "database":
        return DatabaseStore(db)
    return MemoryStore()
