"""Operators suspend an enterprise: reads go on, every mutation is SUSPENDED, sending waits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
)

from koomsg.core.clock import utcnow
from koomsg.core.delivery.dispatch import dispatch_due
from koomsg.core.tasks.scheduler import start_due_tasks
from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, SendableSetup, sendable_setup
from tests.schema.iam_support import doc, member
from tests.schema.mutation_walk import MUTATIONS, SCHEMA, mutation_document

SUSPEND = """mutation($id: ID!, $reason: String!) {
  suspendEnterprise(enterpriseId: $id, reason: $reason) { id suspended suspendedReason } }"""
RESUME = (
    "mutation($id: ID!) { resumeEnterprise(enterpriseId: $id) { id suspended suspendedReason } }"
)
SEND = """mutation($input: SendEmailInput!) { sendEmail(input: $input) { messageId } }"""
CREATE_TASK = """mutation($input: CreateSendingTaskInput!) {
  createSendingTask(input: $input) { id status } }"""
TASK = "query($id: ID!) { node(id: $id) { ... on SendingTask { status counts { toSend } } } }"
REASON = "unpaid invoice 2026-11"


def some_value(type_: GraphQLInputType) -> Any:
    """A value GraphQL accepts for ``type_``, so the request reaches the resolver."""
    if isinstance(type_, GraphQLNonNull):
        return some_value(type_.of_type)
    if isinstance(type_, GraphQLList):
        return [some_value(type_.of_type)]
    if isinstance(type_, GraphQLEnumType):
        return sorted(type_.values)[0]
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: some_value(field.type)
            for name, field in type_.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        }
    assert isinstance(type_, GraphQLScalarType)
    return {
        "Int": 1,
        "Float": 1.0,
        "Boolean": True,
        "DateTime": (utcnow() + timedelta(days=1)).isoformat(),
        "JSON": {},
        "Upload": None,
    }.get(type_.name, "x")


def mutation_call(name: str) -> tuple[str, dict[str, Any]]:
    field = SCHEMA.mutation_type.fields[name]  # type: ignore[union-attr]
    return mutation_document(name), {arg: some_value(a.type) for arg, a in field.args.items()}


@pytest.fixture
async def setup(api: Api, enterprise: EnterpriseHandle, runtime: Runtime) -> SendableSetup:
    return await sendable_setup(api, runtime)


async def suspend(api: Api, enterprise: EnterpriseHandle) -> None:
    made = (
        await api(SUSPEND, {"id": enterprise.id, "reason": REASON}, key=api.keys["operator"])
    ).ok()
    assert made["suspendEnterprise"] == {
        "id": enterprise.id,
        "suspended": True,
        "suspendedReason": REASON,
    }


@pytest.mark.parametrize("mutation", MUTATIONS)
async def test_every_mutation_answers_suspended(
    api: Api, enterprise: EnterpriseHandle, setup: SendableSetup, mutation: str
) -> None:
    await suspend(api, enterprise)
    query, variables = mutation_call(mutation)
    answer = await api(query, variables)
    error = answer.error("SUSPENDED")
    assert error["extensions"]["reason"] == REASON
    assert answer.status == 200


async def test_reads_go_on_and_iam_users_are_held_too(
    api: Api, enterprise: EnterpriseHandle, setup: SendableSetup
) -> None:
    user = await member(api, "writer", doc("Allow", "KooMessage:*:*"))
    await suspend(api, enterprise)
    me = (await api("{ me { name enterprise { suspended suspendedReason } } }")).ok()["me"]
    assert me["enterprise"] == {"suspended": True, "suspendedReason": REASON}
    assert (await api("{ templates { totalCount } }")).ok()
    sent = await api(SEND, {"input": email(setup)}, key=user.secret)
    assert sent.error("SUSPENDED")["extensions"]["reason"] == REASON


def email(setup: SendableSetup) -> dict[str, Any]:
    return {
        "templateId": setup.template_id,
        "senderAddressId": setup.sender_address_id,
        "subject": "Hi",
        "to": "ann@example.org",
    }


async def test_operators_suspend_and_resume_only(
    api: Api, enterprise: EnterpriseHandle, make_enterprise: Any
) -> None:
    other = await make_enterprise("Bystander")
    operator = api.keys["operator"]
    # A root cannot suspend or resume anyone, itself included.
    for target in (enterprise.id, other.id):
        (await api(SUSPEND, {"id": target, "reason": "x"})).error("FORBIDDEN")
    (await api(SUSPEND, {"id": "ent_nope", "reason": "x"}, key=operator)).error(
        "NOT_FOUND", "enterpriseId"
    )
    for reason in ("", " ", "r" * 501, "two\nlines"):
        (await api(SUSPEND, {"id": enterprise.id, "reason": reason}, key=operator)).error(
            "BAD_USER_INPUT", "reason"
        )
    await suspend(api, enterprise)
    # The other enterprise and the operators keep writing.
    (await api('mutation { createIamUser(name: "still-fine") { id } }', key=other.key)).ok()
    resumed = (await api(RESUME, {"id": enterprise.id}, key=operator)).ok()["resumeEnterprise"]
    assert resumed == {"id": enterprise.id, "suspended": False, "suspendedReason": None}
    (await api('mutation { createIamUser(name: "back") { id } }')).ok()


async def test_queued_and_scheduled_messages_wait_and_go_after_resume(
    api: Api, enterprise: EnterpriseHandle, setup: SendableSetup, runtime: Runtime
) -> None:
    message_id = (await api(SEND, {"input": email(setup)})).ok()["sendEmail"]["messageId"]
    at = utcnow() + timedelta(minutes=5)
    task = (
        await api(
            CREATE_TASK,
            {
                "input": {
                    "name": "Held",
                    "subject": "Hello",
                    "templateId": setup.template_id,
                    "senderAddressId": setup.sender_address_id,
                    "sendingType": "SCHEDULED",
                    "scheduledAt": at.isoformat(),
                    "recipients": ["bob@example.org", "cy@example.org"],
                }
            },
        )
    ).ok()["createSendingTask"]
    await suspend(api, enterprise)
    enqueued: list[str] = []

    def enqueue(token: str, ids: list[str]) -> None:
        enqueued.extend(ids)

    # Due, but held: nothing dispatched, nothing started, states unchanged.
    await dispatch_due(runtime.delivery, enqueue=enqueue, now=utcnow() + timedelta(minutes=10))
    assert message_id not in enqueued
    assert await start_due_tasks(runtime.db, now=at + timedelta(seconds=1)) == 0
    held = (await api(TASK, {"id": task["id"]})).ok()["node"]
    assert held == {"status": "SCHEDULED", "counts": {"toSend": 2}}

    (await api(RESUME, {"id": enterprise.id}, key=api.keys["operator"])).ok()
    assert await start_due_tasks(runtime.db, now=at + timedelta(seconds=1)) == 1
    await dispatch_due(runtime.delivery, enqueue=enqueue, now=utcnow() + timedelta(minutes=10))
    assert message_id in enqueued
    started = (await api(TASK, {"id": task["id"]})).ok()["node"]
    assert started["status"] == "SENDING"


async def test_enterprises_pages_for_operators(api: Api, make_enterprise: Any) -> None:
    operator = api.keys["operator"]
    for name in ("P1", "P2", "P3"):
        await make_enterprise(name)
    every = (await api("{ enterprises { id } }", key=operator)).ok()["enterprises"]
    ids = [e["id"] for e in every]
    assert ids == sorted(ids) and len(ids) >= 3
    query = "query($after: String) { enterprises(first: 2, after: $after) { id } }"
    first = (await api(query, {"after": None}, key=operator)).ok()["enterprises"]
    second = (await api(query, {"after": first[-1]["id"]}, key=operator)).ok()["enterprises"]
    assert [e["id"] for e in first + second] == ids[:4]
    (await api("{ enterprises(first: 101) { id } }", key=operator)).error("BAD_USER_INPUT", "first")
