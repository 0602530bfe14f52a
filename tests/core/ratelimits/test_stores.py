"""Every bucket store gives the same answers, and the shared ones hold across processes.

The database store runs on the suite's database (SQLite, or PostgreSQL with
KOOMSG_TEST_DATABASE=postgresql); the Redis store runs when the suite's broker
is Redis. Two engines (or two clients) stand for two processes.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from sqlalchemy import text

from koomsg.core.db import Database
from koomsg.core.ratelimits.bucket import Bucket
from koomsg.core.ratelimits.database import DatabaseStore
from koomsg.core.ratelimits.redis_store import RedisStore
from koomsg.core.ratelimits.stores import BucketStore, MemoryStore
from koomsg.runtime import Runtime

REDIS_URL = os.environ.get("KOOMSG_TEST_BROKER_URL", "")
needs_redis = pytest.mark.skipif(
    not REDIS_URL.startswith("redis"), reason="needs KOOMSG_TEST_BROKER_URL=redis://…"
)
NOW = 1_800_000_000.0
BUCKET = Bucket(rate=1, burst=3)

StoreFactory = Callable[[], BucketStore]


@pytest_asyncio.fixture(params=["memory", "database", pytest.param("redis", marks=needs_redis)])
async def make_store(
    request: pytest.FixtureRequest, runtime: Runtime
) -> AsyncIterator[StoreFactory]:
    """A factory of stores of one kind; with a shared kind, each is a separate 'process'."""
    made: list[BucketStore] = []
    engines: list[Database] = []
    memory = MemoryStore()

    def make() -> BucketStore:
        store: BucketStore
        if request.param == "memory":
            store = memory
        elif request.param == "database":
            engines.append(Database(runtime.settings.database_url))
            store = DatabaseStore(engines[-1])
        else:
            store = RedisStore(REDIS_URL)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()
    for engine in engines:
        await engine.dispose()


def fresh_key() -> str:
    # Redis outlives the test: no two tests (or runs) share a bucket.
    return f"test:{secrets.token_hex(8)}"


async def test_a_burst_then_refused_then_refilled(make_store: StoreFactory) -> None:
    store, key = make_store(), fresh_key()
    for _ in range(3):
        assert (await store.take(key, BUCKET, NOW)).allowed
    refused = await store.take(key, BUCKET, NOW)
    assert not refused.allowed and refused.retry_after == pytest.approx(1.0, abs=1e-3)
    assert (await store.take(key, BUCKET, NOW + 1)).allowed
    assert not (await store.take(key, BUCKET, NOW + 1)).allowed


async def test_peek_never_spends(make_store: StoreFactory) -> None:
    store, key = make_store(), fresh_key()
    for _ in range(5):
        assert (await store.peek(key, BUCKET, NOW)).allowed
    for _ in range(3):
        assert (await store.take(key, BUCKET, NOW)).allowed
    assert not (await store.peek(key, BUCKET, NOW)).allowed


async def test_keys_are_separate_buckets(make_store: StoreFactory) -> None:
    store, first, second = make_store(), fresh_key(), fresh_key()
    for _ in range(3):
        await store.take(first, BUCKET, NOW)
    assert not (await store.take(first, BUCKET, NOW)).allowed
    assert (await store.take(second, BUCKET, NOW)).allowed


async def test_concurrent_takes_of_two_processes_never_exceed_the_burst(
    make_store: StoreFactory,
) -> None:
    """Twenty takes at once, ten from each 'process', on one bucket of ten: exactly ten win."""
    one, two, key = make_store(), make_store(), fresh_key()
    bucket = Bucket(rate=1, burst=10)
    verdicts = await asyncio.gather(
        *(store.take(key, bucket, NOW) for _ in range(10) for store in (one, two))
    )
    assert sum(verdict.allowed for verdict in verdicts) == 10


async def test_the_database_store_forgets_full_buckets(runtime: Runtime) -> None:
    store = DatabaseStore(runtime.db)
    await store.take("old", BUCKET, NOW)
    await store.take("busy", Bucket(rate=1, burst=100), NOW)
    for _ in range(50):
        await store.take("busy", Bucket(rate=1, burst=100), NOW)
    await store._prune(NOW + 2)  # "old" is full again by then, "busy" is not
    async with runtime.db.session() as session:
        keys = (await session.execute(text("SELECT key FROM rate_limit_bucket"))).scalars().all()
    assert list(keys) == ["busy"]
