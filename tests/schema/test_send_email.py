from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from koomsg.core.clock import utcnow
from koomsg.core.delivery.models import IdempotencyKey, Message
from koomsg.runtime import Runtime
from koomsg.testing.plugin import (
    Api,
    EnterpriseHandle,
    SendableSetup,
    WritesNothing,
    count_rows,
    sendable_setup,
    suppress_address,
)

SEND = """mutation($input: SendEmailInput!) { sendEmail(input: $input) {
  messageId sendMethod status subject sender recipient createdAt failureReason task { id }
  template { id name } } }"""


@pytest.fixture
async def setup(api: Api, enterprise: EnterpriseHandle, runtime: Runtime) -> SendableSetup:
    return await sendable_setup(api, runtime, body="<p>Hi {{name}}, your code is {{code}}</p>")


def email(setup: SendableSetup, **extra: Any) -> dict[str, Any]:
    base = {
        "templateId": setup.template_id,
        "senderAddressId": setup.sender_address_id,
        "subject": "Code for {{name}}",
        "to": "ann@example.org",
        "params": {"name": "Ann", "code": 1234, "unused": "x"},
    }
    base.update(extra)
    return {"input": base}


async def test_send_email_writes_one_api_message(
    api: Api, setup: SendableSetup, runtime: Runtime
) -> None:
    sent = (await api(SEND, email(setup))).ok()["sendEmail"]
    assert sent["messageId"].startswith("msg_")
    assert sent["sendMethod"] == "API" and sent["status"] == "TO_SEND"
    assert sent["subject"] == "Code for Ann" and sent["sender"] == setup.sender
    assert sent["task"] is None and sent["template"]["id"] == setup.template_id
    async with runtime.db.session() as session:
        row = await session.get(Message, sent["messageId"])
    assert row is not None and row.task_id is None and row.dispatch_after is not None
    assert row.params == {"name": "Ann", "code": "1234"}


async def test_idempotency_key_returns_the_first_message(
    api: Api, setup: SendableSetup, runtime: Runtime, make_enterprise: Any
) -> None:
    first = (await api(SEND, email(setup, idempotencyKey="order-17"))).ok()["sendEmail"]
    again = (await api(SEND, email(setup, idempotencyKey="order-17", to="ANN@example.org"))).ok()[
        "sendEmail"
    ]
    assert again["messageId"] == first["messageId"] and again["recipient"] == "ann@example.org"
    # The same key with another payload is a client bug: refused, nothing sent.
    for changed in (
        {"to": "bob@example.org"},
        {"subject": "Other"},
        {"params": {"name": "B", "code": 1}},
    ):
        reused = await api(SEND, email(setup, idempotencyKey="order-17", **changed))
        reused.error("CONFLICT", "input.idempotencyKey")
    assert await count_rows(runtime, "message") == 1
    other = (await api(SEND, email(setup, idempotencyKey="order-18"))).ok()["sendEmail"]
    assert other["messageId"] != first["messageId"]
    # After 24 hours the key may be used again.
    async with runtime.db.transaction() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "order-17")  # type: ignore[arg-type]
            .values(created_at=utcnow() - timedelta(hours=25))
        )
    later = (await api(SEND, email(setup, idempotencyKey="order-17"))).ok()["sendEmail"]
    assert later["messageId"] not in (first["messageId"], other["messageId"])
    async with runtime.db.session() as session:
        keys = (await session.execute(select(IdempotencyKey.message_id))).scalars().all()
    assert sorted(keys) == sorted([later["messageId"], other["messageId"]])
    (await api(SEND, email(setup, idempotencyKey="k" * 256))).error(
        "BAD_USER_INPUT", "idempotencyKey"
    )


async def test_suppressed_recipient_is_rejected(
    api: Api, setup: SendableSetup, runtime: Runtime, enterprise: EnterpriseHandle
) -> None:
    await suppress_address(runtime, enterprise.id, "ann@example.org", "HARD_BOUNCE")
    sent = (await api(SEND, email(setup, to="ANN@example.org"))).ok()["sendEmail"]
    assert sent["status"] == "REJECTED"
    assert sent["failureReason"] == "recipient is on the suppression list (hard_bounce)"


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing param", {"params": {"name": "Ann"}}, "BAD_USER_INPUT", "params"),
    ("no params", {"params": None}, "BAD_USER_INPUT", "params"),
    ("params not an object", {"params": ["Ann"]}, "BAD_USER_INPUT", "params"),
    ("bad recipient", {"to": "nobody"}, "BAD_USER_INPUT", "to"),
    ("subject with CR", {"subject": "Hi\rBcc: x@example.org"}, "BAD_USER_INPUT", "subject"),
    (
        "encoded word subject",
        {"subject": "=?utf-8?q?Hi=0D=0ABcc:_x?="},
        "BAD_USER_INPUT",
        "subject",
    ),
    (
        "encoded word in a subject param",
        {"params": {"name": "=?utf-8?q?A=0D=0ABcc:_x?=", "code": 1}},
        "BAD_USER_INPUT",
        "params",
    ),
    (
        "line break in a subject param",
        {"params": {"name": "A\r\nBcc: x", "code": 1}},
        "BAD_USER_INPUT",
        "params",
    ),
    (
        "unknown template",
        {"templateId": "tpl_00000000000000000000000000"},
        "NOT_FOUND",
        "templateId",
    ),
    (
        "unknown sender",
        {"senderAddressId": "adr_00000000000000000000000000"},
        "NOT_FOUND",
        "senderAddressId",
    ),
]


@pytest.mark.parametrize(("case", "change", "code", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_sends_write_nothing(
    api: Api,
    setup: SendableSetup,
    assert_writes_nothing: WritesNothing,
    case: str,
    change: dict[str, Any],
    code: str,
    field: str,
) -> None:
    async with assert_writes_nothing():
        (await api(SEND, email(setup, idempotencyKey="k1", **change))).error(code, field)


async def test_line_break_in_a_body_param_is_fine(api: Api, setup: SendableSetup) -> None:
    sent = (await api(SEND, email(setup, params={"name": "Ann", "code": "12\n34"}))).ok()[
        "sendEmail"
    ]
    assert sent["status"] == "TO_SEND"


async def test_unverified_sender_is_refused(
    api: Api, setup: SendableSetup, runtime: Runtime
) -> None:
    from koomsg.core.domains.models import DomainStatus, SenderDomain

    async with runtime.db.transaction() as session:
        await session.execute(
            update(SenderDomain)
            .where(SenderDomain.id == setup.domain_id)  # type: ignore[arg-type]
            .values(status=DomainStatus.VERIFICATION_FAILED)
        )
    (await api(SEND, email(setup))).error("PRECONDITION_FAILED", "senderAddressId")


async def test_an_internationalised_address_is_shown_in_unicode_and_sent_as_punycode(
    api: Api, setup: SendableSetup, runtime: Runtime
) -> None:
    # "u" + combining diaeresis: shown composed (NFC), sent as the A-label.
    sent = (await api(SEND, email(setup, to="ann@bu\u0308cher.example"))).ok()["sendEmail"]
    assert sent["recipient"] == "ann@b\u00fccher.example"
    async with runtime.db.session() as session:
        row = await session.get(Message, sent["messageId"])
    assert row is not None and row.recipient == "ann@xn--bcher-kva.example"
    details = """query($from: DateTime!, $to: DateTime!, $r: String) {
      sendingDetails(filter: {createdFrom: $from, createdTo: $to, recipient: $r}) {
        edges { node { recipient } } } }"""
    now = utcnow()
    window = {
        "from": (now - timedelta(days=1)).isoformat(),
        "to": (now + timedelta(days=1)).isoformat(),
    }
    for typed in ("ann@bücher.example", "ann@xn--bcher-kva.example"):
        found = (await api(details, {**window, "r": typed})).ok()["sendingDetails"]["edges"]
        assert [edge["node"]["recipient"] for edge in found] == ["ann@bücher.example"]
