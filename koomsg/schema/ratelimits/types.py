from __future__ import annotations

import strawberry

from koomsg.core.ratelimits.service import RateLimit as CoreRateLimit


@strawberry.type(
    description="An API token bucket: requestsPerSecond tokens a second, at most burst at once. "
    "Every request of the enterprise's keys (root and IAM users together) spends one; over it "
    "the whole request answers HTTP 429 with RATE_LIMITED and extensions.retryAfter."
)
class RateLimit:
    requests_per_second: int
    burst: int

    @classmethod
    def from_core(cls, limit: CoreRateLimit) -> RateLimit:
        return cls(requests_per_second=limit.requests_per_second, burst=limit.burst)
