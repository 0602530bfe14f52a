"""``sendEmails``: a batch of transactional messages, each accepted or refused on its own."""

from __future__ import annotations

from typing import Any

import pytest

from koomsg.runtime import Runtime
from koomsg.testing.plugin import (
    Api,
    EnterpriseHandle,
    SendableSetup,
    WritesNothing,
    count_rows,
    sendable_setup,
)
from tests.schema.iam_support import doc, member

SEND_MANY = """mutation($inputs: [SendEmailInput!]!) { sendEmails(inputs: $inputs) {
  index errorCode errorField errorMessage detail { messageId status recipient subject } } }"""


@pytest.fixture
async def setup(api: Api, enterprise: EnterpriseHandle, runtime: Runtime) -> SendableSetup:
    return await sendable_setup(api, runtime, body="<p>Hi {{name}}</p>")


def item(setup: SendableSetup, **extra: Any) -> dict[str, Any]:
    base = {
        "templateId": setup.template_id,
        "senderAddressId": setup.sender_address_id,
        "subject": "For {{name}}",
        "to": "ann@example.org",
        "params": {"name": "Ann"},
    }
    return {**base, **extra}


async def test_a_refused_item_does_not_refuse_the_others(
    api: Api, setup: SendableSetup, runtime: Runtime
) -> None:
    inputs = [
        item(setup, to="ann@example.org"),
        item(setup, to="not an address"),
        item(setup, to="bob@example.org", params={}),
        item(setup, to="cy@example.org", params={"name": "Cy"}),
        item(setup, templateId="tpl_00000000000000000000000000"),
    ]
    results = (await api(SEND_MANY, {"inputs": inputs})).ok()["sendEmails"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    accepted = {r["index"]: r["detail"] for r in results if r["detail"]}
    assert sorted(accepted) == [0, 3]
    assert accepted[3]["subject"] == "For Cy" and accepted[3]["status"] == "TO_SEND"
    refused = {r["index"]: (r["errorCode"], r["errorField"]) for r in results if not r["detail"]}
    assert refused == {
        1: ("BAD_USER_INPUT", "inputs.1.to"),
        2: ("BAD_USER_INPUT", "inputs.2.params"),
        4: ("NOT_FOUND", "inputs.4.templateId"),
    }
    assert all(r["errorMessage"] for r in results if not r["detail"])
    assert all(r["errorCode"] is None for r in results if r["detail"])
    assert await count_rows(runtime, "message") == 2


async def test_idempotency_keys_work_per_item(
    api: Api, setup: SendableSetup, runtime: Runtime
) -> None:
    inputs = [
        item(setup, idempotencyKey="order-1"),
        item(setup, idempotencyKey="order-1"),
        item(setup, idempotencyKey="order-1", to="zed@example.org"),
        item(setup, idempotencyKey="order-2", to="zed@example.org"),
    ]
    results = (await api(SEND_MANY, {"inputs": inputs})).ok()["sendEmails"]
    first, same, conflicting, other = results
    assert same["detail"]["messageId"] == first["detail"]["messageId"]
    assert (conflicting["errorCode"], conflicting["errorField"]) == (
        "CONFLICT",
        "inputs.2.idempotencyKey",
    )
    assert other["detail"]["messageId"] != first["detail"]["messageId"]
    # Repeating the whole request later sends nothing new.
    again = (await api(SEND_MANY, {"inputs": [inputs[0], inputs[3]]})).ok()["sendEmails"]
    assert [r["detail"]["messageId"] for r in again] == [
        first["detail"]["messageId"],
        other["detail"]["messageId"],
    ]
    assert await count_rows(runtime, "message") == 2


@pytest.mark.parametrize("count", [0, 101])
async def test_batch_size_is_one_to_a_hundred(
    api: Api, setup: SendableSetup, assert_writes_nothing: WritesNothing, count: int
) -> None:
    async with assert_writes_nothing():
        inputs = [item(setup, to=f"r{i}@example.org") for i in range(count)]
        (await api(SEND_MANY, {"inputs": inputs})).error("BAD_USER_INPUT", "inputs")


async def test_a_hundred_are_accepted_at_once(
    api: Api, setup: SendableSetup, runtime: Runtime
) -> None:
    inputs = [item(setup, to=f"r{i}@example.org") for i in range(100)]
    results = (await api(SEND_MANY, {"inputs": inputs})).ok()["sendEmails"]
    assert all(r["detail"]["status"] == "TO_SEND" for r in results)
    assert len({r["detail"]["messageId"] for r in results}) == 100
    assert await count_rows(runtime, "message") == 100


async def test_the_send_action_is_checked_once_for_the_whole_request(
    api: Api, setup: SendableSetup, assert_writes_nothing: WritesNothing
) -> None:
    denied = await member(
        api, "no-send", doc("Allow", "KooMessage:*:*"), doc("Deny", "KooMessage:email:send")
    )
    async with assert_writes_nothing():
        answer = await api(SEND_MANY, {"inputs": [item(setup)]}, key=denied.secret)
        answer.error("FORBIDDEN")
