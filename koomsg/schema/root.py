"""The served schema: every area's queries and mutations merged into one root."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.tools import merge_types

import koomsg.schema.addresses.nodes
import koomsg.schema.billing.nodes
import koomsg.schema.domains.nodes
import koomsg.schema.iam.nodes
import koomsg.schema.tasks.nodes
import koomsg.schema.templates.nodes  # noqa: F401
from koomsg.config import Settings
from koomsg.schema.addresses.mutations import AddressMutation
from koomsg.schema.addresses.queries import AddressQuery
from koomsg.schema.authorization import FieldAuthorization
from koomsg.schema.billing.mutations import BillingMutation
from koomsg.schema.billing.queries import BillingQuery
from koomsg.schema.cost import QueryCostLimiter
from koomsg.schema.domains.mutations import DomainMutation
from koomsg.schema.domains.queries import DomainQuery
from koomsg.schema.errors import ErrorMapper
from koomsg.schema.iam.mutations import IamMutation
from koomsg.schema.iam.queries import IamQuery
from koomsg.schema.introspection import IntrospectionGate
from koomsg.schema.node import NodeQuery
from koomsg.schema.ratelimits.mutations import RateLimitMutation
from koomsg.schema.recipients.queries import RecipientQuery
from koomsg.schema.stats.queries import StatsQuery
from koomsg.schema.suppression.mutations import SuppressionMutation
from koomsg.schema.suppression.queries import SuppressionQuery
from koomsg.schema.tasks.batch import BatchSendMutation
from koomsg.schema.tasks.mutations import TaskMutation
from koomsg.schema.tasks.queries import TaskQuery
from koomsg.schema.tasks.subscriptions import TaskSubscription
from koomsg.schema.templates.mutations import TemplateMutation
from koomsg.schema.templates.queries import TemplateQuery
from koomsg.schema.tenancy.mutations import TenancyMutation
from koomsg.schema.tenancy.queries import TenancyQuery
from koomsg.schema.tenancy.suspension import SuspensionMutation

QUERIES: tuple[type, ...] = (
    TenancyQuery,
    IamQuery,
    NodeQuery,
    TemplateQuery,
    DomainQuery,
    AddressQuery,
    SuppressionQuery,
    TaskQuery,
    BillingQuery,
    StatsQuery,
    RecipientQuery,
)
MUTATIONS: tuple[type, ...] = (
    TenancyMutation,
    SuspensionMutation,
    IamMutation,
    TemplateMutation,
    DomainMutation,
    AddressMutation,
    SuppressionMutation,
    TaskMutation,
    BatchSendMutation,
    BillingMutation,
    RateLimitMutation,
)
SUBSCRIPTIONS: tuple[type, ...] = (TaskSubscription,)

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
    cost = settings.max_query_cost if settings else 25_000
    subscription = merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None
    return KoomsgSchema(
        query=Query,
        mutation=Mutation,
        subscription=subscription,
        extensions=[
            ErrorMapper,
            IntrospectionGate,
            # Every nested field that returns a resource checks its read action.
            FieldAuthorization,
            # Factories, so each request gets its own extension instances.
            lambda: QueryDepthLimiter(max_depth=depth),
            lambda: MaxAliasesLimiter(max_alias_count=aliases),
            lambda: MaxTokensLimiter(max_token_count=tokens),
            # Last: it validates with the rules the limiters above added, then counts.
            lambda: QueryCostLimiter(max_cost=cost),
        ],
    )


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
