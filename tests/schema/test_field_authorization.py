"""Field-level authorization, proven over the whole served schema.

For every non-root field that returns a resource (``guarded_fields``), the walk
finds a query reaching it from a root field, runs it as an IAM user allowed
everything but that resource's action, and expects FORBIDDEN at exactly that
field, null there (or, where the contract makes it non-null, at the nearest
nullable parent) and the rest of the answer present. A field added tomorrow
is in the walk without anyone listing it.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
)

from koomsg.runtime import Runtime
from koomsg.schema.authorization import RESOURCE_ACTIONS, UNGOVERNED, guarded_fields, resource_of
from koomsg.schema.root import build_schema
from koomsg.testing.plugin import Api, EnterpriseHandle, GraphQLResponse
from tests.schema.field_access_support import (
    MUTATION_ARGUMENTS,
    Step,
    at,
    denied,
    paths_to,
    position_nullable,
    query_for,
    root_arguments,
    tenant_with_everything,
    unwrap,
)

# Fields whose every way in already needs the same action above them: a user
# denied it is stopped at the root field, so the walk checks that instead.
SHADOWED = {("Overview", "packages")}


def graphql_schema() -> GraphQLSchema:
    return build_schema()._schema


def test_every_node_type_is_a_resource_or_says_why_not() -> None:
    schema = graphql_schema()
    node = schema.type_map["Node"]
    assert isinstance(node, GraphQLInterfaceType)
    implementations = {t.name for t in schema.get_possible_types(node)}
    unclassified = implementations - set(RESOURCE_ACTIONS) - set(UNGOVERNED)
    assert not unclassified, (
        f"{sorted(unclassified)} implement Node: add each to RESOURCE_ACTIONS (with its "
        "list action) or UNGOVERNED (with the reason) in koomsg/schema/authorization.py"
    )
    assert set(RESOURCE_ACTIONS) <= set(schema.type_map), "a resource type left the schema"


def test_no_nested_field_hides_resources_behind_an_abstract_type() -> None:
    # The rule reads the declared type; a nested Node or union field would not say which.
    schema = graphql_schema()
    roots = {schema.query_type.name, schema.mutation_type.name}  # type: ignore[union-attr]
    hidden = [
        f"{type_.name}.{name}"
        for type_ in schema.type_map.values()
        if isinstance(type_, GraphQLObjectType) and type_.name not in roots
        for name, field in type_.fields.items()
        if isinstance(unwrap(field.type), GraphQLInterfaceType | GraphQLUnionType)
        and any(t.name in RESOURCE_ACTIONS for t in schema.get_possible_types(unwrap(field.type)))
    ]
    assert not hidden, f"nested fields of an abstract type holding resources: {hidden}"


def test_the_named_leaks_are_guarded() -> None:
    guarded = guarded_fields(graphql_schema())
    assert guarded[("SendingTask", "template")] == "KooMessage:template:list"
    assert guarded[("SendingTask", "sender")] == "KooMessage:senderAddress:list"
    assert guarded[("SendingDetail", "template")] == "KooMessage:template:list"
    assert guarded[("SendingDetail", "task")] == "KooMessage:devSendTask:list"
    assert guarded[("SenderAddress", "domain")] == "KooMessage:senderDomain:list"
    assert guarded[("SenderDomain", "records")] == "KooMessage:senderDomain:list"
    assert guarded[("IamUser", "groups")] == "KooMessage:iamGroup:list"
    assert guarded[("IamGroup", "users")] == "KooMessage:iamUser:list"
    assert guarded[("IamGroup", "policies")] == "KooMessage:policy:list"
    # Roots keep their own checks; a connection's edges were checked at the connection.
    assert not any(parent in ("Query", "Mutation") for parent, _ in guarded)
    assert ("TemplateEdge", "node") not in guarded
    assert resource_of(graphql_schema().query_type.fields["sendingTasks"].type) == "SendingTask"  # type: ignore[union-attr]


def _forbidden_at(response: GraphQLResponse, steps: list[Step]) -> dict[str, Any] | None:
    names = [name for _, name in steps]
    for error in response.errors:
        path = error.get("path") or []
        if [p for p in path if isinstance(p, str)] == names:
            return error
    return None


def _assert_rest_stays(response: GraphQLResponse, steps: list[Step], error: dict[str, Any]) -> None:
    path = error["path"]
    nullable = position_nullable(steps, path)
    deepest = max((i for i, may in enumerate(nullable) if may), default=None)
    if deepest is None:
        # Non-null all the way up (the contract's choice): GraphQL nulls the whole answer.
        assert response.data is None, response.body
        return
    assert at(response.data, path[:deepest]) is not None, response.body
    assert at(response.data, path[: deepest + 1]) is None, response.body
    container = at(response.data, path[:deepest])
    if isinstance(container, dict):
        assert container.get("__typename"), f"the rest of the answer went: {response.body}"


async def _walk_one(
    api: Api,
    schema: GraphQLSchema,
    target: tuple[str, str],
    action: str,
    key: str,
    arguments: dict[str, str],
    counter: list[int],
) -> str:
    parent_name, field_name = target
    parent = schema.type_map[parent_name]
    assert isinstance(parent, GraphQLObjectType)
    avoid = {field for field, needs in guarded_fields(schema).items() if needs == action}
    candidates: list[tuple[str, list[Step], str]] = []
    query_roots = {
        name
        for name, field in schema.query_type.fields.items()  # type: ignore[union-attr]
        if name in arguments or not any(_required(a) for a in field.args.values())
    }
    for steps in paths_to(schema, schema.query_type, query_roots, parent_name, avoid):  # type: ignore[arg-type]
        candidates.append(("query", steps, arguments.get(steps[0][1], "")))
    for steps in paths_to(
        schema, schema.mutation_type, set(MUTATION_ARGUMENTS), parent_name, avoid
    ):  # type: ignore[arg-type]
        counter[0] += 1
        candidates.append(
            ("mutation", steps, MUTATION_ARGUMENTS[steps[0][1]](counter[0], arguments))
        )
    assert candidates, f"no root field reaches {parent_name}: add its arguments to the walk"
    stopped_at_root = []
    for operation, steps, args in sorted(candidates, key=lambda c: len(c[1])):
        steps = [*steps, (parent, field_name)]
        response = await api(query_for(steps, args, operation), key=key)
        error = _forbidden_at(response, steps)
        if error is not None:
            assert error["extensions"]["code"] == "FORBIDDEN", error
            assert action in error["message"], error
            assert len(response.errors) == 1 or all(
                e["extensions"]["code"] == "FORBIDDEN" for e in response.errors
            ), response.errors
            _assert_rest_stays(response, steps, error)
            return ".".join(name for _, name in steps)
        root_error = _forbidden_at(response, steps[:1])
        assert root_error is not None, f"{parent_name}.{field_name} leaked: {response.body}"
        stopped_at_root.append(steps[0][1])
    assert target in SHADOWED, (
        f"{parent_name}.{field_name}: every way in ({stopped_at_root}) was refused at the root"
    )
    return f"{parent_name}.{field_name} (shadowed by {stopped_at_root})"


def _required(argument: Any) -> bool:
    return isinstance(argument.type, GraphQLNonNull) and argument.default_value is None


async def test_every_resource_field_is_forbidden_without_its_action(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    tenant = await tenant_with_everything(api, runtime)
    schema = graphql_schema()
    guarded = guarded_fields(schema)
    assert len(guarded) >= 10, guarded
    keys: dict[str, str] = {}
    for number, action in enumerate(sorted(set(guarded.values()))):
        keys[action] = await denied(api, f"walker{number}", action)
    arguments = root_arguments(tenant)
    counter = [0]
    walked = [
        await _walk_one(api, schema, target, action, keys[action], arguments, counter)
        for target, action in sorted(guarded.items())
    ]
    assert len(walked) == len(guarded)
    # The issue's own examples are among the paths walked.
    assert {"sendingTasks.edges.node.template", "senderAddresses.edges.node.domain"} <= set(walked)
