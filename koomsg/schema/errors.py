"""The one place that turns errors into what clients see.

Core errors keep their message and become ``extensions.code`` and
``extensions.field``. Query validation and variable errors are the client's
mistake: BAD_USER_INPUT. Anything else is masked, with a request id that
matches the server log, so no traceback or internal detail ever leaves.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, Visitor, visit
from graphql.language import ArgumentNode, DocumentNode, ObjectFieldNode, VariableNode
from strawberry.extensions import SchemaExtension

from koomsg.core.errors import KoomsgError
from koomsg.core.tenancy.suspension import Suspended

log = logging.getLogger("koomsg.api")


def map_error(
    error: GraphQLError, request_id: str, document: DocumentNode | None = None
) -> GraphQLError:
    original = error.original_error
    if isinstance(original, KoomsgError):
        extensions: dict[str, object] = {"code": original.code}
        if original.field:
            extensions["field"] = original.field
        if isinstance(original, Suspended):
            extensions["reason"] = original.reason
        return GraphQLError(original.message, path=error.path, extensions=extensions)
    if original is None or isinstance(original, GraphQLError):
        # Parse, validation and variable coercion errors: the request itself is wrong.
        extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
        field = _field_of(error.message) or _variable_field(error.message, document)
        if field:
            extensions["field"] = field
        return GraphQLError(
            error.message, nodes=error.nodes, path=error.path, extensions=extensions
        )
    log.error(
        "unexpected error (request id %s) at %s",
        request_id,
        error.path,
        exc_info=(type(original), original, original.__traceback__),
    )
    return GraphQLError(
        f"Internal server error (request id {request_id})",
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
    )


_AT_PATH = re.compile(r"at '([A-Za-z0-9_.\[\]]+)'")
_MISSING = re.compile(
    r"(?:Field '([A-Za-z0-9_]+)' of required type|required field '([A-Za-z0-9_]+)')"
)
_ARGUMENT = re.compile(r"[Aa]rgument '([A-Za-z0-9_]+)'")


def _field_of(message: str) -> str | None:
    """The input field a validation message is about, as its last path segment."""
    for pattern in (_AT_PATH, _MISSING, _ARGUMENT):
        found = pattern.search(message)
        if found:
            name = next(group for group in found.groups() if group)
            return re.sub(r"\[\d+\]", "", name).rsplit(".", 1)[-1]
    return None


_VARIABLE = re.compile(r"Variable '\$([A-Za-z0-9_]+)'")


def _variable_field(message: str, document: DocumentNode | None) -> str | None:
    """For a bad scalar variable ("Variable '$from' has invalid value"), the input field
    or argument the variable is passed to: the client's variable name means nothing to us."""
    found = _VARIABLE.search(message)
    if found is None or document is None:
        return None
    variable = found.group(1)
    fields: list[str] = []

    class Finder(Visitor):
        def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> None:
            if isinstance(node.value, VariableNode) and node.value.name.value == variable:
                fields.append(node.name.value)

        def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
            if isinstance(node.value, VariableNode) and node.value.name.value == variable:
                fields.append(node.name.value)

    visit(document, Finder())
    return fields[0] if fields else None


class ErrorMapper(SchemaExtension):
    def _request_id(self) -> str:
        context = self.execution_context.context
        return getattr(context, "request_id", "-")

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            request_id = self._request_id()
            document = self.execution_context.graphql_document
            result.errors = [map_error(error, request_id, document) for error in result.errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:  # type: ignore[override]
        # Subscriptions push results one by one, before on_operation ends: map each as it goes.
        if getattr(result, "errors", None):
            request_id = self._request_id()
            result.errors = [map_error(error, request_id) for error in result.errors]
        yield
