"""No NUL character in any text a request passes, wherever it would be stored.

PostgreSQL's text types cannot hold U+0000 (SQLite can), so a NUL in any
string argument reached the database as a driver error: a 500 on one backend
only, found by the mutation fuzz test. No field of koomsg has a use for it,
so it is refused once, before validation and execution, for variables and
inline string literals alike: BAD_USER_INPUT naming the variable or argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from graphql.language import ArgumentNode, ObjectFieldNode, StringValueNode, Visitor, visit
from strawberry.extensions import SchemaExtension

NUL = "\x00"


def _nul_path(value: Any, path: str) -> str | None:
    """The dotted path of the first text holding a NUL inside a variable's value."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _nul_path(key, path) or _nul_path(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}.{index}")
            if found:
                return found
    return None


class _LiteralFinder(Visitor):
    """The name of the argument or input field around the first string literal with a NUL."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.found: str | None = None

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        self.names.append(node.name.value)

    def leave_argument(self, *_: Any) -> None:
        self.names.pop()

    def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> None:
        self.names.append(node.name.value)

    def leave_object_field(self, *_: Any) -> None:
        self.names.pop()

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if self.found is None and NUL in node.value:
            self.found = ".".join(self.names) or "query"


class NulTextGuard(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None and context.graphql_document is not None:
            found = (_nul_path(v, name) for name, v in (context.variables or {}).items())
            field = next((path for path in found if path), None)
            if field is None:
                finder = _LiteralFinder()
                visit(context.graphql_document, finder)
                field = finder.found
            if field is not None:
                context.pre_execution_errors = [
                    GraphQLError(
                        f"{field} contains a NUL character (U+0000), which no text may hold",
                        extensions={"code": "BAD_USER_INPUT", "field": field},
                    )
                ]
        yield
