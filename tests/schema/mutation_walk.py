"""The served schema's mutations as documents, for tests that walk every one of them."""

from __future__ import annotations

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLSchema

from koomsg.schema.root import build_schema

SCHEMA: GraphQLSchema = build_schema()._schema
MUTATIONS = sorted(SCHEMA.mutation_type.fields)  # type: ignore[union-attr]


def mutation_document(name: str) -> str:
    """``mutation($a: T!, …) { name(a: $a, …) { __typename } }``: every argument a variable."""
    field = SCHEMA.mutation_type.fields[name]  # type: ignore[union-attr]
    declared = ", ".join(f"${arg}: {field.args[arg].type}" for arg in field.args)
    passed = ", ".join(f"{arg}: ${arg}" for arg in field.args)
    returned = field.type
    while isinstance(returned, GraphQLNonNull | GraphQLList):
        returned = returned.of_type
    selection = " { __typename }" if isinstance(returned, GraphQLObjectType) else ""
    head = f"mutation({declared})" if declared else "mutation"
    return f"{head} {{ {name}{f'({passed})' if passed else ''}{selection} }}"
