"""Introspection only with a valid key, unless KOOMSG_PUBLIC_INTROSPECTION=1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from koomsg.runtime import Runtime
from koomsg.schema.root import build_schema
from koomsg.testing.plugin import Api, EnterpriseHandle, make_test_settings
from koomsg.web.app import create_app

SCHEMA = "{ __schema { queryType { name } } }"
TYPE = '{ __type(name: "Enterprise") { name } }'
# Hidden in a fragment, beside an ordinary field.
FRAGMENT = "query { me { name } ...Peek } fragment Peek on Query { __schema { types { name } } }"


@pytest.mark.parametrize("query", [SCHEMA, TYPE, FRAGMENT])
async def test_introspection_without_a_key_is_unauthenticated(api: Api, query: str) -> None:
    for key in ("", "key_01nope.wrong"):
        response = await api(query, key=key)
        assert response.data is None
        assert "introspection needs an access key" in response.error("UNAUTHENTICATED")["message"]


async def test_a_valid_key_may_introspect(api: Api, enterprise: EnterpriseHandle) -> None:
    assert (await api(SCHEMA)).ok()["__schema"]["queryType"]["name"] == "Query"
    assert (await api(TYPE, key=api.keys["operator"])).ok()["__type"]["name"] == "Enterprise"


async def test_typename_needs_no_key(api: Api) -> None:
    assert (await api("{ __typename }", key="")).ok() == {"__typename": "Query"}


@pytest_asyncio.fixture
async def public_api(koomsg_database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = make_test_settings(
        koomsg_database_url, tmp_path / "public", KOOMSG_PUBLIC_INTROSPECTION="1"
    )
    runtime = Runtime.build(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Api(client=client)
    finally:
        await runtime.close()


async def test_public_introspection_opens_it_to_everyone(public_api: Api) -> None:
    assert (await public_api(SCHEMA, key="")).ok()["__schema"]["queryType"]["name"] == "Query"


async def test_the_schema_object_still_exports_and_introspects() -> None:
    """``koomsg.schema.export`` and the contract test use the schema itself, not HTTP."""
    schema = build_schema()
    assert "type Query" in schema.as_str()
    assert (await schema.execute(SCHEMA)).data == {"__schema": {"queryType": {"name": "Query"}}}
