"""The one place that turns errors into what clients see.

Core errors keep their message and become ``extensions.code`` and
``extensions.field``. Query validation and variable errors are the client's
mistake: BAD_USER_INPUT. Anything else is masked, with a request id that
matches the server log, so no traceback or internal detail ever leaves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from koomsg.core.errors import KoomsgError

log = logging.getLogger("koomsg.api")


def map_error(error: GraphQLError, request_id: str) -> GraphQLError:
    original = error.original_error
    if isinstance(original, KoomsgError):
        extensions: dict[str, object] = {"code": original.code}
        if original.field:
            extensions["field"] = original.field
        return GraphQLError(original.message, path=error.path, extensions=extensions)
    if original is None:
        # Parse, validation and variable coercion errors: the request itself is wrong.
        extensions = {"code": "BAD_USER_INPUT", **(error.extensions or {})}
        extensions["code"] = "BAD_USER_INPUT"
        return GraphQLError(
            error.message, nodes=error.nodes, path=error.path, extensions=extensions
        )
    if isinstance(original, GraphQLError):
        return map_error(original, request_id)
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


class ErrorMapper(SchemaExtension):
    def _request_id(self) -> str:
        context = self.execution_context.context
        return getattr(context, "request_id", "-")

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            request_id = self._request_id()
            result.errors = [map_error(error, request_id) for error in result.errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:  # type: ignore[override]
        # Subscriptions push results one by one, before on_operation ends: map each as it goes.
        if getattr(result, "errors", None):
            request_id = self._request_id()
            result.errors = [map_error(error, request_id) for error in result.errors]
        yield
