"""What the field-authorization tests share: a tenant that has one of everything,
IAM users denied one action, and paths through the served schema."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
)

from koomsg.core.clock import utcnow
from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, sendable_setup
from tests.schema.iam_support import doc, member

CREATE_TASK = (
    "mutation($input: CreateSendingTaskInput!) { createSendingTask(input: $input) { id } }"
)
CREATE_OFFER = """mutation { createPackageOffer(name: "Monthly 1k", mode: MONTHLY, emailQuota: 1000,
    priceCents: 900, currency: "CNY") { id } }"""
PURCHASE = "mutation($id: ID!) { purchasePackage(offerId: $id) { id } }"


@dataclass
class Tenant:
    """One of every resource, made by the enterprise root."""

    template_id: str
    address_id: str
    domain_id: str
    task_id: str
    offer_id: str


async def tenant_with_everything(api: Api, runtime: Runtime) -> Tenant:
    setup = await sendable_setup(api, runtime)
    task = (
        await api(
            CREATE_TASK,
            {
                "input": {
                    "name": "Spring news",
                    "subject": "Hello",
                    "templateId": setup.template_id,
                    "senderAddressId": setup.sender_address_id,
                    "sendingType": "NOW",
                    "recipients": ["ann@example.org"],
                }
            },
        )
    ).ok()["createSendingTask"]
    offer = (await api(CREATE_OFFER, key=api.keys["operator"])).ok()["createPackageOffer"]
    (await api(PURCHASE, {"id": offer["id"]})).ok()
    return Tenant(
        setup.template_id, setup.sender_address_id, setup.domain_id, task["id"], offer["id"]
    )


async def denied(api: Api, name: str, action: str) -> str:
    """The key of an IAM user allowed everything but ``action``."""
    made = await member(api, name, doc("Allow", "KooMessage:*:*"), doc("Deny", action))
    return made.secret


def root_arguments(tenant: Tenant) -> dict[str, str]:
    """Arguments for the root fields a walk may start from (those with required ones)."""
    now = utcnow()
    window = (
        f'{{createdFrom: "{(now - timedelta(hours=1)).isoformat()}", '
        f'createdTo: "{(now + timedelta(hours=1)).isoformat()}"}}'
    )
    return {
        "sendingDetails": f"(filter: {window})",
        "priceQuote": f'(offerId: "{tenant.offer_id}")',
        "previewTemplate": f'(id: "{tenant.template_id}")',
        "sendEmails": (
            f'(inputs: [{{templateId: "{tenant.template_id}", senderAddressId: '
            f'"{tenant.address_id}", subject: "Walk", to: "walk@example.org"}}])'
        ),
    }


# Mutations a walk may run (each run makes something new), with their arguments
# (from the run's number and the tenant's ``root_arguments``).
MUTATION_ARGUMENTS: dict[str, Callable[[int, dict[str, str]], str]] = {
    "createSenderDomain": lambda n, _: f'(input: {{name: "walk{n}.example.com"}})',
    "sendEmails": lambda _, arguments: arguments["sendEmails"],
}

Step = tuple[GraphQLObjectType, str]  # (parent type, field name)


def unwrap(type_: GraphQLOutputType) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _required_args(field: Any) -> bool:
    return any(
        isinstance(arg.type, GraphQLNonNull) and arg.default_value is None
        for arg in field.args.values()
    )


def paths_to(
    schema: GraphQLSchema, root: GraphQLObjectType, roots: set[str], target: str, avoid: set[Any]
) -> list[list[Step]]:
    """One shortest path per usable root field to an object of type ``target``, never
    through a field in ``avoid`` (fields needing the very action a test denies)."""
    found: list[list[Step]] = []
    for name in sorted(roots):
        start = unwrap(root.fields[name].type)
        if not isinstance(start, GraphQLObjectType):
            continue
        queue: deque[tuple[GraphQLObjectType, list[Step]]] = deque([(start, [(root, name)])])
        seen = {start.name}
        while queue:
            type_, path = queue.popleft()
            if type_.name == target:
                found.append(path)
                break
            for field_name, field in type_.fields.items():
                inner = unwrap(field.type)
                if (
                    isinstance(inner, GraphQLObjectType)
                    and inner.name not in seen
                    and (type_.name, field_name) not in avoid
                    and not _required_args(field)
                ):
                    seen.add(inner.name)
                    queue.append((inner, [*path, (type_, field_name)]))
    return sorted(found, key=len)


def query_for(steps: list[Step], arguments: str, operation: str = "query") -> str:
    """``a(args) { __typename b { __typename c { … } } }`` along ``steps``."""
    names = [name for _, name in steps]
    leaf_type = unwrap(steps[-1][0].fields[steps[-1][1]].type)
    inner = "__typename" if isinstance(leaf_type, GraphQLObjectType) else ""
    text = f"{names[-1]} {{ {inner} }}" if inner else names[-1]
    for name in reversed(names[1:-1]):
        text = f"{name} {{ __typename {text} }}"
    return f"{operation} {{ {names[0]}{arguments} {{ __typename {text} }} }}"


def position_nullable(steps: list[Step], error_path: list[Any]) -> list[bool]:
    """For each prefix of ``error_path`` (field names and list indices), whether that
    position may hold null, read from the schema along ``steps``."""
    nullable: list[bool] = []
    fields = iter(steps)
    current: Any = None
    for segment in error_path:
        if isinstance(segment, str):
            parent, name = next(fields)
            current = parent.fields[name].type
        else:
            current = current.of_type  # from the list to its items
        nullable.append(not isinstance(current, GraphQLNonNull))
        if isinstance(current, GraphQLNonNull):
            current = current.of_type
    return nullable


def at(data: Any, path: list[Any]) -> Any:
    for segment in path:
        data = data[segment]
    return data
