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

from tests.e2e.e2e_support import (
    KoomsgProcess,
    enterprise_and_operator,
    koomsg_env,
    serve_and_wait,
)

pytestmark = pytest.mark.slow
REDIS_URL = os.environ.get("KOOMSG_TEST_BROKER_URL", "")
BURST = 20
SET_LIMIT = """mutation($id: ID!) {
  setEnterpriseRateLimit(enterpriseId: $id, requestsPerSecond: 1, burst: 20) { id } }"""


async def test_two_serve_processes_share_one_bucket_on_redis(
    scratch_pg_url: str, spawn: Callable[..., KoomsgProcess], tmp_path: Path
) -> None:
    if not REDIS_URL.startswith("redis"):
        pytest.skip("needs a Redis KOOMSG_TEST_BROKER_URL")
    enterprise_id, key, operator = await enterprise_and_operator(scratch_pg_url, tmp_path / "setup")
    env = koomsg_env(
        tmp_path / "serve", KOOMSG_DATABASE_URL=scratch_pg_url, KOOMSG_BROKER_URL=REDIS_URL
    )
    urls = [await serve_and_wait(spawn, env), await serve_and_wait(spawn, env)]
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
