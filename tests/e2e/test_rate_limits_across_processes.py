"""Two ``koomsg serve`` processes spend from one enterprise's bucket in Redis.

Runs with the real services (KOOMSG_TEST_DATABASE=postgresql and a Redis
KOOMSG_TEST_BROKER_URL): with a Redis broker the buckets live in Redis by
default. Separate buckets per process would let twice the burst through;
one shared bucket refuses after about one burst (plus what refills while
the requests run, one a second).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from koomsg.core.iam.keys import issue_key
from koomsg.core.principal import PrincipalKind
from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, make_test_settings, new_enterprise
from koomsg.web.app import create_app
from tests.e2e.e2e_support import KoomsgProcess, free_port, koomsg_env, wait_until

pytestmark = pytest.mark.slow
REDIS_URL = os.environ.get("KOOMSG_TEST_BROKER_URL", "")
BURST = 20
SET_LIMIT = """mutation($id: ID!) {
  setEnterpriseRateLimit(enterpriseId: $id, requestsPerSecond: 1, burst: 20) { id } }"""


async def _enterprise_and_operator(database_url: str, tmp_path: Path) -> tuple[str, str, str]:
    """An enabled enterprise with its root key, and an operator key, made in-process."""
    runtime = Runtime.build(make_test_settings(database_url, tmp_path / "setup"))
    try:
        async with runtime.db.transaction() as session:
            _, operator = await issue_key(session, kind=PrincipalKind.OPERATOR, name="e2e")
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://setup") as client:
            made = await new_enterprise(Api(client=client, keys={"operator": operator}), "Twin")
        return made.id, made.key, operator
    finally:
        await runtime.close()


async def _serve(spawn: Callable[..., KoomsgProcess], env: dict[str, str]) -> str:
    port = free_port()
    process = spawn(["serve", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}"

    async def healthy() -> bool:
        if not process.alive():
            raise AssertionError(f"koomsg serve exited:\n{process.tail()}")
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{url}/healthz", timeout=1)).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_until(healthy, within=60, what="koomsg serve to answer /healthz")
    return url


async def test_two_serve_processes_share_one_bucket_on_redis(
    scratch_pg_url: str, spawn: Callable[..., KoomsgProcess], tmp_path: Path
) -> None:
    if not REDIS_URL.startswith("redis"):
        pytest.skip("needs a Redis KOOMSG_TEST_BROKER_URL")
    enterprise_id, key, operator = await _enterprise_and_operator(scratch_pg_url, tmp_path)
    env = koomsg_env(
        tmp_path / "serve", KOOMSG_DATABASE_URL=scratch_pg_url, KOOMSG_BROKER_URL=REDIS_URL
    )
    urls = [await _serve(spawn, env), await _serve(spawn, env)]
    me = {"query": "{ me { name } }"}
    async with httpx.AsyncClient(timeout=10) as client:
        # The operator sets the limit through the first process; the second applies it too.
        changed = await client.post(
            f"{urls[0]}/graphql",
            json={"query": SET_LIMIT, "variables": {"id": enterprise_id}},
            headers={"Authorization": f"Bearer {operator}"},
        )
        assert changed.status_code == 200 and not changed.json().get("errors"), changed.text
        served = [0, 0]
        refused = None
        for attempt in range(4 * BURST):
            which = attempt % 2
            response = await client.post(
                f"{urls[which]}/graphql", json=me, headers={"Authorization": f"Bearer {key}"}
            )
            if response.status_code == 429:
                refused = response
                break
            assert response.status_code == 200 and not response.json().get("errors")
            served[which] += 1
    assert refused is not None, f"never limited after {served} requests"
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] >= 1
    assert int(refused.headers["Retry-After"]) >= 1
    # Both processes served, and together about one burst: their buckets are one.
    assert all(served), served
    assert BURST <= sum(served) < 2 * BURST, served
