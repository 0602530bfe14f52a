"""Arbitrary arguments to every mutation: never a 500, never a traceback, every error coded.

The walk reads the served schema, so a new mutation is fuzzed the day it
appears. Values follow each argument's declared type most of the time (so the
resolvers run, not only GraphQL's coercion) and are arbitrary JSON otherwise:
huge and control-character strings, out-of-range numbers, deep and wide JSON
for the ``JSON`` scalar, real and foreign ids. ``KOOMSG_FUZZ_EXAMPLES`` raises
the budget per mutation for a longer run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, sendable_setup
from tests.schema.mutation_walk import MUTATIONS, SCHEMA, mutation_document

EXAMPLES = int(os.environ.get("KOOMSG_FUZZ_EXAMPLES", "12"))

# Text a hostile or careless client sends: control characters, NUL, markup,
# template syntax, header injection, right-to-left marks, very long values.
NASTY = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\r\nBcc: x@example.org",
        "{{p}}" * 300,
        "<script>alert(1)</script>",
        "javascript:alert(1)",
        "\u202e\u0000\ufeff",
        "x" * 70_000,
        "tpl_00000000000000000000000000",
        "msg_" + "0" * 26,
        "2026-13-45T99:99:99",
        "-1",
        "1e309",
        "../../etc/passwd",
        "ann@example.org",
        "*",
        '{"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": "*"}]}',
    ]
)
TEXT = st.one_of(st.text(max_size=300), NASTY)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=30,
)


def deep_json(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": [value]}
    return value


def scalar_values(type_: GraphQLScalarType, ids: list[str]) -> st.SearchStrategy[Any]:
    name = type_.name
    if name == "Int":
        return st.integers(min_value=-(2**40), max_value=2**40)
    if name == "Float":
        return st.floats(allow_nan=False, allow_infinity=False)
    if name == "Boolean":
        return st.booleans()
    if name == "ID":
        return st.one_of(st.sampled_from(ids), TEXT)
    if name == "DateTime":
        return st.one_of(st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()), TEXT)
    if name == "JSON":
        return st.one_of(JSON_VALUES, st.integers(10, 300).map(deep_json))
    if name == "Upload":
        return st.none()
    return TEXT


def values_for(type_: GraphQLInputType, ids: list[str], depth: int = 0) -> st.SearchStrategy[Any]:
    """A value for ``type_``: usually well-typed, now and then any JSON at all."""
    if isinstance(type_, GraphQLNonNull):
        return values_for(type_.of_type, ids, depth)
    if isinstance(type_, GraphQLList):
        return st.lists(values_for(type_.of_type, ids, depth + 1), max_size=3)
    if isinstance(type_, GraphQLEnumType):
        return st.one_of(st.sampled_from(sorted(type_.values)), TEXT)
    if isinstance(type_, GraphQLInputObjectType):
        if depth > 3:
            return st.just({})
        required = {
            name: values_for(field.type, ids, depth + 1)
            for name, field in type_.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        }
        optional = {
            name: values_for(field.type, ids, depth + 1)
            for name, field in type_.fields.items()
            if not isinstance(field.type, GraphQLNonNull)
        }
        return st.fixed_dictionaries(required, optional=optional)
    assert isinstance(type_, GraphQLScalarType)
    return scalar_values(type_, ids)


def arguments(name: str, ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    field = SCHEMA.mutation_type.fields[name]  # type: ignore[union-attr]
    typed = st.fixed_dictionaries({arg: values_for(a.type, ids) for arg, a in field.args.items()})
    untyped = st.dictionaries(st.sampled_from(sorted(field.args) or ["x"]), JSON_VALUES)
    return st.one_of(typed, typed, typed, untyped)


def assert_clean(status: int, sent_and_text: str) -> None:
    sent, _, text = sent_and_text.partition("\n")
    assert status < 500, sent_and_text[:2000]
    assert "Traceback" not in text and 'File "' not in text, sent_and_text[:2000]
    body = json.loads(text)
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code, f"an error without extensions.code: {error} for {sent}"
        assert code != "INTERNAL_SERVER_ERROR", f"{error} for {sent}"


@pytest.fixture
async def known_ids(api: Api, enterprise: EnterpriseHandle, runtime: Runtime) -> list[str]:
    setup = await sendable_setup(api, runtime, body="<p>Hi {{name}}</p>")
    return [setup.template_id, setup.sender_address_id, setup.domain_id, enterprise.id]


@pytest.mark.parametrize("mutation", MUTATIONS)
async def test_no_argument_makes_a_mutation_fail_badly(
    mutation: str, api: Api, known_ids: list[str]
) -> None:
    query = mutation_document(mutation)
    # The enterprise root reaches the tenant's resolvers; the operator the operators' ones.
    keys = [api.key, api.keys["operator"]]

    # Hypothesis draws the cases (it cannot drive this event loop); each is then sent.
    cases: list[tuple[dict[str, Any], int]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(variables=arguments(mutation, known_ids), which=st.sampled_from([0, 0, 1]))
    def draw(variables: dict[str, Any], which: int) -> None:
        cases.append((variables, which))

    draw()
    for variables, which in cases:
        response = await api.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers=api.headers(keys[which]),
        )
        assert_clean(response.status_code, f"{variables!r:.500}\n{response.text}")


async def test_no_request_body_fails_badly(api: Api, enterprise: EnterpriseHandle) -> None:
    # Whole bodies: any JSON (not only an object with a query), and raw text that is not JSON.
    bodies: list[bytes] = []

    @settings(max_examples=EXAMPLES * 5, deadline=None, database=None)
    @given(body=st.one_of(JSON_VALUES.map(lambda v: json.dumps(v).encode()), st.binary()))
    def draw(body: bytes) -> None:
        bodies.append(body)

    draw()
    bodies.append(b"[" * 100_000)
    for body in bodies:
        response = await api.client.post(
            "/graphql",
            content=body,
            headers={**api.headers(None), "content-type": "application/json"},
        )
        assert response.status_code < 500, body[:200]
        assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("operation", "as_operator", "field"),
    [
        ('mutation { revokeAccessKey(id: "k\\u0000") { id } }', False, "id"),
        ('mutation { removeSuppression(address: "a\\u0000@example.org") }', False, "address"),
        ('mutation { retirePackageOffer(id: "o\\u0000") { id } }', True, "id"),
        (
            'mutation { setEnterpriseVerification(enterpriseId: "e\\u0000", '
            "realNameVerified: true, industryClass: NON_SENSITIVE) { id } }",
            True,
            "enterpriseId",
        ),
    ],
)
async def test_a_nul_in_an_id_names_nothing(
    api: Api, enterprise: EnterpriseHandle, operation: str, as_operator: bool, field: str
) -> None:
    # PostgreSQL cannot compare text with U+0000: these were 500s there (found by the fuzz).
    key = api.keys["operator"] if as_operator else None
    (await api(operation, key=key)).error("NOT_FOUND", field)
