"""The served schema: every area's queries and mutations merged into one root."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.tools import merge_types

import koomsg.schema.iam.nodes  # noqa: F401  (registers node kinds)
from koomsg.config import Settings
from koomsg.schema.errors import ErrorMapper
from koomsg.schema.iam.mutations import IamMutation
from koomsg.schema.iam.queries import IamQuery
from koomsg.schema.node import NodeQuery
from koomsg.schema.tenancy.mutations import TenancyMutation
from koomsg.schema.tenancy.queries import TenancyQuery

QUERIES: tuple[type, ...] = (TenancyQuery, IamQuery, NodeQuery)
MUTATIONS: tuple[type, ...] = (TenancyMutation, IamMutation)
SUBSCRIPTIONS: tuple[type, ...] = ()

Query = merge_types("Query", QUERIES)
Mutation = merge_types("Mutation", MUTATIONS)


class KoomsgSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # ErrorMapper logs the unexpected ones with their request id; the rest are the client's.
        return None


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    depth = settings.max_query_depth if settings else 12
    aliases = settings.max_aliases if settings else 30
    tokens = settings.max_tokens if settings else 4000
    subscription = merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None
    return KoomsgSchema(
        query=Query,
        mutation=Mutation,
        subscription=subscription,
        extensions=[
            ErrorMapper,
            QueryDepthLimiter(max_depth=depth),
            MaxAliasesLimiter(max_alias_count=aliases),
            MaxTokensLimiter(max_token_count=tokens),
        ],
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
