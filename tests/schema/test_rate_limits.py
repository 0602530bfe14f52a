"""Rate limits over HTTP, as a client meets them: 429, RATE_LIMITED, retryAfter, nothing run.

Each test installs its own limiter with a clock it moves by hand, so no
bucket refills behind its back on a slow machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from koomsg.core.db import Database
from koomsg.core.iam.keys import issue_key
from koomsg.core.principal import PrincipalKind
from koomsg.core.ratelimits.bucket import Bucket
from koomsg.core.ratelimits.database import DatabaseStore
from koomsg.core.ratelimits.limiter import RateLimiter
from koomsg.core.ratelimits.stores import BucketStore, MemoryStore
from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, WritesNothing, count_rows
from koomsg.web.app import create_app

ME = "{ me { name } }"
CREATE_TEMPLATE = (
    """mutation($input: CreateTemplateInput!) { createTemplate(input: $input) { id } }"""
)
TEMPLATE = {"input": {"name": "Hi", "bodyType": "RICH_TEXT", "body": "<p>Hi</p>"}}
SET_LIMIT = """mutation($id: ID!, $rps: Int!, $burst: Int!) {
  setEnterpriseRateLimit(enterpriseId: $id, requestsPerSecond: $rps, burst: $burst) {
    id rateLimit { requestsPerSecond burst } } }"""


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


Install = Callable[..., Clock]


@pytest.fixture
def limits(runtime: Runtime) -> Install:
    """``limits(rps, burst, failures=10, store=None)``: a fresh limiter on a hand-moved clock."""

    def install(
        rps: float, burst: int, *, failures: int = 10, store: BucketStore | None = None
    ) -> Clock:
        clock = Clock()
        runtime.rate_limiter = RateLimiter(
            store or MemoryStore(),
            defaults=Bucket(rate=rps, burst=burst),
            auth_failures=Bucket(rate=failures / 60, burst=failures),
            clock=clock,
        )
        return clock

    return install


@pytest_asyncio.fixture
async def elsewhere(runtime: Runtime) -> AsyncIterator[Api]:
    """The same API, seen from another client address."""
    transport = httpx.ASGITransport(app=create_app(runtime), client=("192.0.2.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Api(client=client)


def assert_rate_limited(response: Any, retry_after: int) -> None:
    assert response.status == 429, response.body
    assert response.data is None
    error = response.error("RATE_LIMITED")
    assert error["extensions"]["retryAfter"] == retry_after


async def test_over_the_limit_is_429_and_a_mutation_writes_nothing(
    api: Api, enterprise: EnterpriseHandle, limits: Install, assert_writes_nothing: WritesNothing
) -> None:
    clock = limits(rps=1, burst=3)
    for _ in range(3):
        (await api(ME)).ok()
    async with assert_writes_nothing():
        refused = await api(CREATE_TEMPLATE, TEMPLATE)
    assert_rate_limited(refused, retry_after=1)
    raw = await api.client.post("/graphql", json={"query": ME}, headers=api.headers(None))
    assert raw.status_code == 429 and raw.headers["Retry-After"] == "1"
    clock.now += 1  # one token back: one request, then refused again
    (await api(CREATE_TEMPLATE, TEMPLATE)).ok()
    assert_rate_limited(await api(ME), retry_after=1)


async def test_all_keys_of_an_enterprise_share_one_bucket(
    api: Api, enterprise: EnterpriseHandle, limits: Install, runtime: Runtime
) -> None:
    async with runtime.db.transaction() as session:
        _, second = await issue_key(
            session, kind=PrincipalKind.ENTERPRISE_ROOT, name="Acme", enterprise_id=enterprise.id
        )
    limits(rps=1, burst=4)
    for key in (enterprise.key, second, enterprise.key, second):
        (await api(ME, key=key)).ok()
    assert_rate_limited(await api(ME, key=second), retry_after=1)
    assert_rate_limited(await api(ME, key=enterprise.key), retry_after=1)


async def test_an_operator_override_sizes_one_enterprise(
    api: Api, enterprise: EnterpriseHandle, make_enterprise: Any, limits: Install
) -> None:
    other = await make_enterprise("Other")
    limits(rps=50, burst=100)
    operator = api.keys["operator"]
    changed = (
        await api(SET_LIMIT, {"id": enterprise.id, "rps": 1, "burst": 2}, key=operator)
    ).ok()["setEnterpriseRateLimit"]
    assert changed["rateLimit"] == {"requestsPerSecond": 1, "burst": 2}
    for _ in range(2):
        (await api(ME)).ok()
    assert_rate_limited(await api(ME), retry_after=1)
    for _ in range(5):  # the other enterprise keeps the defaults
        (await api(ME, key=other.key)).ok()
    listed = (
        await api("{ enterprises { id rateLimit { requestsPerSecond burst } } }", key=operator)
    ).ok()["enterprises"]
    limits_by_id = {row["id"]: row["rateLimit"] for row in listed}
    assert limits_by_id[enterprise.id] == {"requestsPerSecond": 1, "burst": 2}
    assert limits_by_id[other.id] == {"requestsPerSecond": 50, "burst": 100}


async def test_operators_share_their_own_bucket(
    api: Api, enterprise: EnterpriseHandle, limits: Install, runtime: Runtime
) -> None:
    async with runtime.db.transaction() as session:
        _, second_operator = await issue_key(
            session, kind=PrincipalKind.OPERATOR, name="second-operator"
        )
    limits(rps=1, burst=3)
    for key in (api.keys["operator"], second_operator, api.keys["operator"]):
        (await api("{ enterprises { id } }", key=key)).ok()
    assert_rate_limited(await api("{ enterprises { id } }", key=second_operator), retry_after=1)
    (await api(ME)).ok()  # enterprises spend from their own buckets


async def test_unauthenticated_requests_are_limited_per_address(
    api: Api, limits: Install, elsewhere: Api
) -> None:
    limits(rps=1, burst=3)
    for path in ("/t/o/not-a-token", "/u/not-a-token", "/t/c/not-a-token"):
        assert (await api.client.get(path)).status_code == 404
    assert (await api.client.get("/t/o/not-a-token")).status_code == 429
    page = await api.client.get("/graphql", headers={"Accept": "text/html"})  # GraphiQL
    assert page.status_code == 429 and page.json()["errors"][0]["extensions"]["retryAfter"] == 1
    assert_rate_limited(await api(ME, key=""), retry_after=1)
    # Another address has its own bucket; probes are never limited.
    assert (await elsewhere.client.get("/u/not-a-token")).status_code == 404
    assert (await api.client.get("/healthz")).status_code == 200
    assert (await api.client.get("/readyz")).status_code == 200


async def test_failed_authentications_are_limited_per_address(
    api: Api, enterprise: EnterpriseHandle, limits: Install, elsewhere: Api
) -> None:
    clock = limits(rps=1000, burst=1000, failures=10)
    wrong = enterprise.key.split(".")[0] + ".wrong-secret"
    for _ in range(10):
        response = await api(ME, key=wrong)
        assert response.status == 200
        response.error("UNAUTHENTICATED")
    assert_rate_limited(await api(ME, key=wrong), retry_after=6)
    # No more guessing from here, even with the right key: the address waits.
    assert_rate_limited(await api(ME, key=enterprise.key), retry_after=6)
    (await elsewhere(ME, key=enterprise.key)).ok()
    clock.now += 6  # one failure token back
    (await api(ME, key=enterprise.key)).ok()
    (await api(ME, key=wrong)).error("UNAUTHENTICATED")
    assert_rate_limited(await api(ME, key=enterprise.key), retry_after=6)


async def test_the_database_store_limits_through_the_api(
    api: Api, enterprise: EnterpriseHandle, limits: Install, runtime: Runtime
) -> None:
    """``KOOMSG_RATE_LIMIT_STORAGE=database``, on SQLite and on PostgreSQL; a second engine
    stands for a second process on the same database."""
    second_process = Database(runtime.settings.database_url)
    try:
        limits(rps=1, burst=2, store=DatabaseStore(runtime.db))
        (await api(ME)).ok()
        first = runtime.rate_limiter
        limits(rps=1, burst=2, store=DatabaseStore(second_process))
        runtime.rate_limiter.clock = first.clock
        (await api(ME)).ok()
        assert_rate_limited(await api(ME), retry_after=1)
        assert await count_rows(runtime, "rate_limit_bucket") >= 1
    finally:
        await second_process.dispose()


@pytest.mark.parametrize(
    ("rps", "burst", "field"),
    [
        (0, 10, "requestsPerSecond"),
        (100_001, 10, "requestsPerSecond"),
        (5, 0, "burst"),
        (5, 1_000_001, "burst"),
    ],
)
async def test_set_enterprise_rate_limit_refuses_bad_sizes(
    api: Api,
    enterprise: EnterpriseHandle,
    assert_writes_nothing: WritesNothing,
    rps: int,
    burst: int,
    field: str,
) -> None:
    async with assert_writes_nothing():
        response = await api(
            SET_LIMIT, {"id": enterprise.id, "rps": rps, "burst": burst}, key=api.keys["operator"]
        )
    response.error("BAD_USER_INPUT", field=field)


async def test_only_operators_set_rate_limits(api: Api, enterprise: EnterpriseHandle) -> None:
    (await api(SET_LIMIT, {"id": enterprise.id, "rps": 1000, "burst": 5000})).error("FORBIDDEN")
    unknown = {"id": "ent_unknown", "rps": 1, "burst": 1}
    (await api(SET_LIMIT, unknown, key=api.keys["operator"])).error("NOT_FOUND")


async def test_an_enterprise_sees_its_limit_with_the_settings_defaults(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    me = (await api("{ me { enterprise { rateLimit { requestsPerSecond burst } } } }")).ok()
    defaults = runtime.settings
    assert me["me"]["enterprise"]["rateLimit"] == {
        "requestsPerSecond": defaults.rate_limit_rps,
        "burst": defaults.rate_limit_burst,
    }
