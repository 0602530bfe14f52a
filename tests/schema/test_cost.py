"""Query cost is counted before execution: over the budget nothing runs, nothing renders."""

from __future__ import annotations

import json

import pytest

from koomsg.core.templates import render
from koomsg.schema.cost import query_cost
from koomsg.schema.root import build_schema
from koomsg.testing.plugin import Api, EnterpriseHandle

CREATE = "mutation($input: CreateTemplateInput!) { createTemplate(input: $input) { id } }"
PREVIEW = "previewTemplate(id: $id, params: $params) { html text }"


def cost_of(query: str, variables: dict[str, object] | None = None) -> int:
    from graphql import parse

    schema = build_schema()._schema  # type: ignore[attr-defined]
    return query_cost(schema, parse(query), variables)


def test_lists_multiply_down_the_nesting() -> None:
    # A connection costs its rows; its edges and nodes one each per row.
    flat = cost_of("{ templates(first: 100) { edges { node { id } } } }")
    assert flat == 100 + 100 + 100
    nested = cost_of(
        "query($n: Int) { sendingTasks(first: $n) { edges { node { importErrors(first: 50) "
        "{ row } } } } }",
        {"n": 40},
    )
    assert nested == 40 * 3 + 40 * 50
    # No first: the default page size; fragments count as written inline.
    defaulted = cost_of(
        "{ templates { ...T } } fragment T on TemplateConnection { edges { node { id } } }"
    )
    assert defaulted == 20 * 3
    assert cost_of("{ me { name } }") == 1


async def test_an_expensive_query_is_refused_before_it_runs(
    api: Api, enterprise: EnterpriseHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from koomsg.core.tasks import service as tasks

    async def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a refused query must not execute")

    monkeypatch.setattr(tasks, "list_tasks", never)
    # 100 tasks with 3 times 100 errors each: 30 000 rows, over the 25 000 of the default.
    errors = " ".join(f"e{i}: importErrors(first: 100) {{ row }}" for i in range(3))
    greedy = f"{{ sendingTasks(first: 100) {{ edges {{ node {{ {errors} }} }} }} }}"
    error = (await api(greedy)).error("BAD_USER_INPUT")
    assert error["extensions"]["limit"] == "KOOMSG_MAX_QUERY_COST"
    assert error["extensions"]["maximum"] == 25_000
    assert "first" in error["message"]


async def test_the_forty_megabyte_preview_is_refused_unrendered(
    api: Api, enterprise: EnterpriseHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The template of issue 14: 10 000 {{p}} (50 KB) with a 1 KB value answered 40 MB."""
    body = "{{p}}" * 10_000
    template = (
        await api(CREATE, {"input": {"name": "Bomb", "bodyType": "PLAIN_TEXT", "body": body}})
    ).ok()["createTemplate"]

    def no_rendering(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may be rendered")

    monkeypatch.setattr(render.Compiled, "render", no_rendering)
    variables = {"id": template["id"], "params": {"p": "v" * 1024}}
    header = "query($id: ID!, $params: JSON)"
    single = await api(f"{header} {{ {PREVIEW} }}", variables)
    error = single.error("BAD_USER_INPUT", "params")
    assert "MiB" in error["message"]
    assert len(json.dumps(single.body)) < 1024
    aliased = " ".join(f"a{i}: {PREVIEW}" for i in range(30))
    many = await api(f"{header} {{ {aliased} }}", variables)
    error = many.error("BAD_USER_INPUT")
    assert error["extensions"]["limit"] == "KOOMSG_MAX_QUERY_COST"
    assert len(json.dumps(many.body)) < 1024
    # Within the budget, previews still work.
    small = {"id": template["id"], "params": {"p": "v"}}
    monkeypatch.undo()
    assert len((await api(f"{header} {{ {PREVIEW} }}", small)).ok()["previewTemplate"]["text"])
