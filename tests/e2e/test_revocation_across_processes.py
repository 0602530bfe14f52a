"""A key revoked through one ``koomsg serve`` is refused by another on its very next request.

Two API processes share one PostgreSQL database, as behind a load balancer.
The second process has just authenticated the key (so any cache it kept would
still hold it) when the first revokes it; the second must refuse the key on
the next request, with no waiting period.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.e2e_support import (
    KoomsgProcess,
    enterprise_and_operator,
    koomsg_env,
    serve_and_wait,
)

pytestmark = pytest.mark.slow
CREATE_USER = 'mutation { createIamUser(name: "deployer") { id } }'
CREATE_KEY = "mutation($id: ID!) { createAccessKey(userId: $id) { id secret } }"
REVOKE_KEY = "mutation($id: ID!) { revokeAccessKey(id: $id) { revokedAt } }"
ME = {"query": "{ me { name } }"}


async def _graphql(
    client: httpx.AsyncClient, url: str, key: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
    )
    body = response.json()
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


async def test_revoked_key_is_refused_by_a_second_process_on_its_next_request(
    scratch_pg_url: str, spawn: Callable[..., KoomsgProcess], tmp_path: Path
) -> None:
    _, root_key, _ = await enterprise_and_operator(scratch_pg_url, tmp_path / "setup")
    env = koomsg_env(tmp_path / "serve", KOOMSG_DATABASE_URL=scratch_pg_url)
    first, second = await serve_and_wait(spawn, env), await serve_and_wait(spawn, env)
    async with httpx.AsyncClient(timeout=10) as client:
        user = (await _graphql(client, first, root_key, CREATE_USER, {}))["createIamUser"]
        key = (await _graphql(client, first, root_key, CREATE_KEY, {"id": user["id"]}))[
            "createAccessKey"
        ]
        user_auth = {"Authorization": f"Bearer {key['secret']}"}
        # The second process authenticates the key a few times: warm whatever it keeps.
        for _ in range(3):
            answered = await client.post(f"{second}/graphql", json=ME, headers=user_auth)
            assert answered.json()["data"]["me"]["name"] == "deployer", answered.text

        revoked = await _graphql(client, first, root_key, REVOKE_KEY, {"id": key["id"]})
        assert revoked["revokeAccessKey"]["revokedAt"]

        refused = await client.post(f"{second}/graphql", json=ME, headers=user_auth)
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "UNAUTHENTICATED", refused.text
        assert not refused.json().get("data") or refused.json()["data"].get("me") is None
        # And the first process, which revoked it, refuses it too.
        again = await client.post(f"{first}/graphql", json=ME, headers=user_auth)
        assert again.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        # The root key that did the revoking keeps working on both.
        for url in (first, second):
            assert (await _graphql(client, url, root_key, ME["query"], {}))["me"]
