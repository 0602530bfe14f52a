"""Introspection (``__schema``, ``__type``) only for requests with a valid access key.

The schema is a map of everything the API can do; strangers need not have
it. GraphiQL keeps working once a key is in its Headers tab (it sends the
key with its introspection query). ``KOOMSG_PUBLIC_INTROSPECTION=1`` opens it
to everyone. ``__typename`` stays free: clients need it to read unions.
Exporting the schema (``koomsg.schema.export``) uses the schema object, not a
query, and is not affected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from graphql import ExecutionResult, GraphQLError, Visitor, visit
from graphql.language import DocumentNode, FieldNode
from strawberry.extensions import SchemaExtension

from koomsg.core.errors import Unauthenticated

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


def asks_introspection(document: DocumentNode) -> bool:
    """Whether any operation or fragment of ``document`` selects ``__schema`` or ``__type``."""
    found: list[str] = []

    class Finder(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.name.value in INTROSPECTION_FIELDS:
                found.append(node.name.value)

    visit(document, Finder())
    return bool(found)


class IntrospectionGate(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        document = self.execution_context.graphql_document
        context = self.execution_context.context
        if document is not None and asks_introspection(document) and not await _allowed(context):
            refusal = Unauthenticated(
                "introspection needs an access key: send 'Authorization: Bearer <secret>' "
                "(in GraphiQL, in the Headers tab)"
            )
            # A result set before execution replaces it: nothing runs.
            self.execution_context.result = ExecutionResult(
                data=None, errors=[GraphQLError(refusal.message, original_error=refusal)]
            )
        yield


async def _allowed(context: Any) -> bool:
    runtime = getattr(context, "runtime", None)
    if runtime is None or runtime.settings.public_introspection:
        return True  # the schema used directly (export, tests): no HTTP request to guard
    return bool(await context.authenticated())
