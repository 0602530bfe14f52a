"""Every documented input maximum (README "Input limits"): BAD_USER_INPUT naming the field,
nothing written."""

from __future__ import annotations

from typing import Any

from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, sendable_setup

TEMPLATE = "mutation($input: CreateTemplateInput!) { createTemplate(input: $input) { id } }"
ADDRESS = (
    "mutation($input: CreateSenderAddressInput!) { createSenderAddress(input: $input) { id } }"
)
POLICY = "mutation($n: String!, $d: JSON!) { createPolicy(name: $n, document: $d) { id } }"
SEND = "mutation($input: SendEmailInput!) { sendEmail(input: $input) { messageId } }"
TASK = "mutation($input: CreateSendingTaskInput!) { createSendingTask(input: $input) { id } }"


def template(**fields: Any) -> dict[str, Any]:
    return {"input": {"name": "T", "bodyType": "PLAIN_TEXT", "body": "Hi", **fields}}


async def refused(
    api: Api, assert_writes_nothing: Any, query: str, variables: dict[str, Any], field: str
) -> str:
    async with assert_writes_nothing():
        response = await api(query, variables)
    return str(response.error("BAD_USER_INPUT", field)["message"])


async def test_template_limits(
    api: Api, enterprise: EnterpriseHandle, assert_writes_nothing: Any
) -> None:
    await refused(api, assert_writes_nothing, TEMPLATE, template(name="n" * 129), "name")
    (await api(TEMPLATE, template(name="n" * 128))).ok()
    big = template(name="Big", bodyType="RICH_TEXT", body="<p>" + "x" * (2 * 1024 * 1024) + "</p>")
    await refused(api, assert_writes_nothing, TEMPLATE, big, "body")
    deep = template(name="Deep", bodyType="RICH_TEXT", body="<div>" * 201 + "x" + "</div>" * 201)
    await refused(api, assert_writes_nothing, TEMPLATE, deep, "body")


async def test_address_alias_and_prefix(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, assert_writes_nothing: Any
) -> None:
    setup = await sendable_setup(api, runtime)
    address = {"domainId": setup.domain_id, "prefix": "p" * 65}
    await refused(api, assert_writes_nothing, ADDRESS, {"input": address}, "prefix")
    address = {"domainId": setup.domain_id, "prefix": "ok", "alias": "a" * 65}
    await refused(api, assert_writes_nothing, ADDRESS, {"input": address}, "alias")


async def test_policy_documents_are_bounded(
    api: Api, enterprise: EnterpriseHandle, assert_writes_nothing: Any
) -> None:
    def document(statements: int, actions: int = 1) -> dict[str, Any]:
        action = ["KooMessage:template:list"] * actions
        return {"Version": "1.1", "Statement": [{"Effect": "Allow", "Action": action}] * statements}

    message = await refused(
        api, assert_writes_nothing, POLICY, {"n": "p", "d": document(1, 1000)}, "document"
    )
    assert "16384 characters" in message
    message = await refused(
        api, assert_writes_nothing, POLICY, {"n": "p", "d": document(101)}, "document"
    )
    assert "100 statements" in message
    (await api(POLICY, {"n": "ok", "d": document(100)})).ok()
    await refused(api, assert_writes_nothing, POLICY, {"n": "n" * 129, "d": document(1)}, "name")


async def test_send_limits(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, assert_writes_nothing: Any
) -> None:
    setup = await sendable_setup(api, runtime)
    email = {
        "templateId": setup.template_id,
        "senderAddressId": setup.sender_address_id,
        "subject": "Hi",
        "to": "ann@example.org",
    }
    key = {"input": {**email, "idempotencyKey": "k" * 256}}
    await refused(api, assert_writes_nothing, SEND, key, "idempotencyKey")
    subject = {"input": {**email, "subject": "s" * 257}}
    await refused(api, assert_writes_nothing, SEND, subject, "subject")
    task = {
        "input": {
            "name": "n" * 129,
            "subject": "Hi",
            "templateId": setup.template_id,
            "senderAddressId": setup.sender_address_id,
            "sendingType": "NOW",
            "recipients": ["ann@example.org"],
        }
    }
    await refused(api, assert_writes_nothing, TASK, task, "name")


async def test_attachment_names(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, assert_writes_nothing: Any
) -> None:
    setup = await sendable_setup(api, runtime)
    task = {
        "input": {
            "name": "With file",
            "subject": "Hi",
            "templateId": setup.template_id,
            "senderAddressId": setup.sender_address_id,
            "sendingType": "NOW",
            "recipients": ["ann@example.org"],
            "attachments": [None],
        }
    }
    files = {"input.attachments.0": ("n" * 252 + ".pdf", b"%PDF-1.4 x", "application/pdf")}
    async with assert_writes_nothing():
        response = await api.upload(TASK, task, files)
    response.error("BAD_USER_INPUT", "attachments")
