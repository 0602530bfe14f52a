"""Query cost: what a request would make the server do, counted before any resolver runs.

Depth, aliases and tokens bound a query's shape (strawberry's limiters); this bounds
its size. Every field returning objects costs the number of times it would be resolved
(its parents' row counts multiplied down the nesting); a list costs those times its rows:
``first`` where the field takes it (or the default page size), the connection's own rows
for its ``edges``, and a small fixed estimate for the short unpaged lists (a domain's
records, a user's groups). Rendering a preview is weighted as what it is: up to 2 MiB of
output. A query over ``KOOMSG_MAX_QUERY_COST`` is BAD_USER_INPUT and nothing runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)
from graphql.language import DocumentNode
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from koomsg.core.pagination import DEFAULT_PAGE_SIZE

# Unpaged lists of objects are short by construction (DNS records, a user's groups).
UNPAGED_ROWS = 10
# A preview renders up to 2 MiB: with the default budget, at most four in one request.
FIELD_WEIGHTS = {"previewTemplate": 6000}
LIMIT_NAME = "KOOMSG_MAX_QUERY_COST"


class _Counter:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def fields(
        self, selections: SelectionSetNode, parent: Any, seen: frozenset[str] = frozenset()
    ) -> Iterator[tuple[FieldNode, Any]]:
        """The field nodes of a selection set with their parent type, fragments inlined."""
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                own = self.schema.get_type(condition.name.value) if condition else parent
                yield from self.fields(selection.selection_set, own or parent, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue
                own = self.schema.get_type(fragment.type_condition.name.value)
                yield from self.fields(fragment.selection_set, own or parent, seen | {name})

    def first(self, node: FieldNode) -> int | None:
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(0, int(value.value))
            if isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
                if isinstance(given, int) and not isinstance(given, bool):
                    return max(0, given)
        return None

    def rows(self, node: FieldNode, definition: Any, parent: Any) -> int:
        """How many rows one resolution of this field returns, as far as cost goes."""
        if "first" in definition.args:
            found = self.first(node)
            return DEFAULT_PAGE_SIZE if found is None else found
        kind = definition.type.of_type if isinstance(definition.type, GraphQLNonNull) else None
        listed = isinstance(definition.type, GraphQLList) or isinstance(kind, GraphQLList)
        if not listed:
            return 1
        # A connection's edges are the rows its ``first`` already counted.
        return 1 if getattr(parent, "name", "").endswith("Connection") else UNPAGED_ROWS

    def cost(self, selections: SelectionSetNode, parent: Any, times: int) -> int:
        total = 0
        for node, owner in self.fields(selections, parent):
            definition = getattr(owner, "fields", {}).get(node.name.value)
            if definition is None:  # __typename and other meta fields cost nothing
                continue
            named = get_named_type(definition.type)
            total += times * FIELD_WEIGHTS.get(node.name.value, 0)
            if not is_composite_type(named) or node.selection_set is None:
                continue
            rows = self.rows(node, definition, owner)
            total += times * rows
            total += self.cost(node.selection_set, named, times * rows)
        return total


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
) -> int:
    """The cost of the operation a request would run (the most expensive if unnamed)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    counter = _Counter(schema, fragments, variables or {})
    costs = [0]
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if operation_name and (definition.name is None or definition.name.value != operation_name):
            continue
        root: GraphQLObjectType | None = schema.get_root_type(definition.operation)
        if root is not None:
            costs.append(counter.cost(definition.selection_set, root, 1))
    return max(costs)


class QueryCostLimiter(SchemaExtension):
    """Validates the document, then refuses it when its cost is over ``max_cost``."""

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if context.pre_execution_errors is None and document is not None:
            # The usual validation first, so the cost is counted only over a valid query.
            context.pre_execution_errors = validate_document(
                context.schema._schema, document, context.validation_rules
            )
            if not context.pre_execution_errors:
                cost = query_cost(
                    context.schema._schema, document, context.variables, context.operation_name
                )
                if cost > self.max_cost:
                    context.pre_execution_errors = [self._refusal(cost)]
        yield

    def _refusal(self, cost: int) -> GraphQLError:
        return GraphQLError(
            f"this query would cost {cost} (the limit is {self.max_cost}, "
            f"{LIMIT_NAME}): ask for fewer rows with first, nest fewer lists "
            "or send fewer aliases",
            extensions={"limit": LIMIT_NAME, "cost": cost, "maximum": self.max_cost},
        )
