"""totalCount is counted only when a query selects it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle

CREATE = "mutation($input: CreateTemplateInput!) { createTemplate(input: $input) { id } }"


@pytest.fixture
def statements(runtime: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.lower())

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def counts(seen: list[str]) -> int:
    return sum("count(*)" in statement for statement in seen)


async def test_count_runs_only_when_total_count_is_selected(
    api: Api, enterprise: EnterpriseHandle, statements: list[str]
) -> None:
    for name in ("One", "Two", "Three"):
        template = {"name": name, "bodyType": "PLAIN_TEXT", "body": "Hi"}
        (await api(CREATE, {"input": template})).ok()
    statements.clear()
    page = (await api("{ templates(first: 2) { edges { node { name } } } }")).ok()
    assert len(page["templates"]["edges"]) == 2
    assert counts(statements) == 0
    statements.clear()
    total = (
        await api(
            "{ templates(first: 2) { totalCount pageInfo { hasNextPage } } "
            "public: publicTemplates { totalCount } }"
        )
    ).ok()
    assert total["templates"] == {"totalCount": 3, "pageInfo": {"hasNextPage": True}}
    assert total["public"]["totalCount"] == 5
    assert counts(statements) == 1  # public templates are counted in memory
