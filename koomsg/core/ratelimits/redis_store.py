"""Buckets in Redis: shared by every process on the broker's Redis.

One Lua script reads the TAT, decides and writes it back; Redis runs
scripts one at a time, so a take is atomic across all processes. Keys expire
once their bucket is full again, so Redis keeps only buckets in use.
"""

from __future__ import annotations

from typing import Any

from koomsg.core.ratelimits.bucket import Bucket, Verdict

_PREFIX = "koomsg:ratelimit:"
# KEYS[1] the bucket; ARGV: now, interval, tolerance, 1 to take / 0 to peek.
# Answers {allowed, tat, retry_after} as strings (Redis would truncate Lua numbers).
_SCRIPT = """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
if tat < now then tat = now end
local new = tat + interval
if new - now > tolerance + 1e-9 then
  return {'0', string.format('%.6f', tat), string.format('%.6f', new - tolerance - now)}
end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[1], string.format('%.6f', new), 'PX', math.ceil((new - now) * 1000) + 1000)
end
return {'1', string.format('%.6f', new), '0'}
"""


class RedisStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Any = None
        self._script: Any = None

    def _run(self) -> Any:
        # Connected on first use, inside the event loop that serves the requests.
        if self._script is None:
            import redis.asyncio

            self._client = redis.asyncio.Redis.from_url(self.url, socket_connect_timeout=2)
            self._script = self._client.register_script(_SCRIPT)
        return self._script

    async def _call(self, key: str, bucket: Bucket, now: float, take: bool) -> Verdict:
        args = [repr(now), repr(bucket.interval), repr(bucket.tolerance), "1" if take else "0"]
        allowed, tat, retry_after = await self._run()(keys=[_PREFIX + key], args=args)
        return Verdict(
            allowed=allowed in (b"1", "1"), tat=float(tat), retry_after=float(retry_after)
        )

    async def take(self, key: str, bucket: Bucket, now: float) -> Verdict:
        return await self._call(key, bucket, now, True)

    async def peek(self, key: str, bucket: Bucket, now: float) -> Verdict:
        return await self._call(key, bucket, now, False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = self._script = None
