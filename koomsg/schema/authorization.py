"""Authorization follows the data: every field that returns a resource checks it.

Root fields name their own action (``info.context.read``/``write``). Below
them, a resource can turn up anywhere: a task's ``template``, an address's
``domain``, a group's ``policies``, a mutation's answer. ``FieldAuthorization``
is the one rule for all of those: keyed by the GraphQL type a field returns
(unwrapped of lists, non-null and connections), it asks for that type's
list/read action in ``RESOURCE_ACTIONS`` before the field resolves. Nothing is
declared per field, so a field added tomorrow is checked like the others; and
``tests/schema/test_field_authorization.py`` fails when a ``Node`` type is
neither a resource here nor listed in ``UNGOVERNED``.

Without the action the field answers FORBIDDEN at its path. Where the field
is nullable it is null and the rest of the answer stays; where the public
contract makes it non-null (``SendingTask.template``, ``SenderAddress.domain``,
``IamGroup.policies`` …), GraphQL carries the null up to the nearest nullable
parent, which may be the whole ``data``: the contract cannot change, and a
denied resource must never be answered with made-up content.

Operators and the enterprise root hold everything within their scope and are
never stopped here; an IAM user's policies are read once per request
(``Context.permissions``).
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import isawaitable
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
)
from strawberry.extensions import SchemaExtension

from koomsg.core.errors import Forbidden
from koomsg.core.iam.actions import get_action

# Resource type -> the action that lists and reads it (the same one its root
# list field and node(id:) ask for).
RESOURCE_ACTIONS: dict[str, str] = {
    "Template": "KooMessage:template:list",
    "SenderDomain": "KooMessage:senderDomain:list",
    # A domain's records are part of it: readable with the domain's action, also
    # where a mutation (createSenderDomain …) answers with them.
    "DnsRecord": "KooMessage:senderDomain:list",
    "SenderAddress": "KooMessage:senderAddress:list",
    "SendingTask": "KooMessage:devSendTask:list",
    "SendingDetail": "KooMessage:sendingDetail:list",
    "SuppressionEntry": "KooMessage:suppression:list",
    "IamUser": "KooMessage:iamUser:list",
    "IamGroup": "KooMessage:iamGroup:list",
    "Policy": "KooMessage:policy:list",
    "AccessKey": "KooMessage:accessKey:list",
    "PackageOffer": "KooMessage:packageOffer:list",
    "Package": "KooMessage:overview:get",
}

# Node types that are not IAM resources, and why.
UNGOVERNED: dict[str, str] = {
    "Enterprise": "every key may read the enterprise it acts for (me.enterprise); "
    "listing enterprises is an operator root field with its own action",
}

for _action in RESOURCE_ACTIONS.values():
    get_action(_action)  # an undeclared action fails at import, not at the first query

FieldKey = tuple[str, str]  # (parent type name, field name)
_TABLES: WeakKeyDictionary[GraphQLSchema, dict[FieldKey, str]] = WeakKeyDictionary()


def _named(type_: GraphQLOutputType) -> GraphQLNamedType:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _connection_node(type_: GraphQLNamedType) -> GraphQLNamedType | None:
    """The node type of a ``…Connection { edges { node } }`` type, else None."""
    if not isinstance(type_, GraphQLObjectType) or not type_.name.endswith("Connection"):
        return None
    edges = type_.fields.get("edges")
    edge = _named(edges.type) if edges is not None else None
    if not isinstance(edge, GraphQLObjectType) or "node" not in edge.fields:
        return None
    return _named(edge.fields["node"].type)


def resource_of(type_: GraphQLOutputType) -> str | None:
    """The resource type name a field of this type returns, if any."""
    named = _named(type_)
    named = _connection_node(named) or named
    return named.name if named.name in RESOURCE_ACTIONS else None


def _edge_types(schema: GraphQLSchema) -> set[str]:
    edges: set[str] = set()
    for type_ in schema.type_map.values():
        if _connection_node(type_) is not None:
            assert isinstance(type_, GraphQLObjectType)
            edges.add(_named(type_.fields["edges"].type).name)
    return edges


def guarded_fields(schema: GraphQLSchema) -> dict[FieldKey, str]:
    """Every non-root field returning a resource, with the action it needs."""
    table = _TABLES.get(schema)
    if table is None:
        roots = {t.name for t in (schema.query_type, schema.mutation_type) if t is not None}
        if schema.subscription_type is not None:
            roots.add(schema.subscription_type.name)
        # A connection's edges hold the nodes its own field was checked for.
        skipped = roots | _edge_types(schema)
        table = {
            (type_.name, name): RESOURCE_ACTIONS[resource]
            for type_ in schema.type_map.values()
            if isinstance(type_, GraphQLObjectType) and type_.name not in skipped
            for name, field in type_.fields.items()
            if (resource := resource_of(field.type)) is not None
        }
        _TABLES[schema] = table
    return table


async def require_read(context: Any, action: str, resource: str) -> None:
    """Raise FORBIDDEN unless the caller may read ``resource`` (needing ``action``)."""
    decision = (await context.permissions()).may_read(action)
    if not decision.allowed:
        raise Forbidden(f"reading {resource} needs {action}, which is {decision.explanation}")


class FieldAuthorization(SchemaExtension):
    """The resolve hook: checked fields await the caller's permission first."""

    def resolve(
        self,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo,
        *args: str,
        **kwargs: Any,
    ) -> Any:
        action = guarded_fields(info.schema).get((info.parent_type.name, info.field_name))
        if action is None:
            # Most fields: no check, and stay synchronous.
            return _next(root, info, *args, **kwargs)
        return self._checked(action, _next, root, info, *args, **kwargs)

    async def _checked(
        self,
        action: str,
        _next: Callable[..., Any],
        root: Any,
        info: GraphQLResolveInfo,
        *args: str,
        **kwargs: Any,
    ) -> Any:
        resource = resource_of(info.return_type) or _named(info.return_type).name
        await require_read(info.context, action, resource)
        result = _next(root, info, *args, **kwargs)
        return await result if isawaitable(result) else result
