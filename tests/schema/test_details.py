from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from koomsg.core.clock import utcnow
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.runtime import Runtime
from koomsg.testing.plugin import Api, EnterpriseHandle, SendableSetup, sendable_setup

DETAILS = """query($filter: SendingDetailFilter!, $first: Int, $after: String) {
  sendingDetails(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { messageId sendMethod status subject sender recipient createdAt receivedAt
      failureReason task { id name } template { id name } } } } }"""
CREATE = """mutation($input: CreateSendingTaskInput!) { createSendingTask(input: $input) { id } }"""
SEND = "mutation($input: SendEmailInput!) { sendEmail(input: $input) { messageId } }"


def window(**extra: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "createdFrom": (now - timedelta(hours=1)).isoformat(),
        "createdTo": (now + timedelta(hours=1)).isoformat(),
        **extra,
    }


async def details(api: Api, key: str | None = None, **filter: Any) -> list[dict[str, Any]]:
    page = (await api(DETAILS, {"filter": window(**filter), "first": 100}, key=key)).ok()[
        "sendingDetails"
    ]
    assert page["totalCount"] == len(page["edges"])
    return [e["node"] for e in page["edges"]]


@pytest.fixture
async def sent(api: Api, enterprise: EnterpriseHandle, runtime: Runtime) -> dict[str, Any]:
    """Two tasks (templates Welcome and Receipt) and one API send."""
    first = await sendable_setup(api, runtime)
    second = await sendable_setup(
        api, runtime, template_name="Receipt", domain="m2.example.com", prefix="billing"
    )

    async def task(setup: SendableSetup, name: str, subject: str, recipients: list[str]) -> str:
        made = await api(
            CREATE,
            {
                "input": {
                    "name": name,
                    "subject": subject,
                    "templateId": setup.template_id,
                    "senderAddressId": setup.sender_address_id,
                    "sendingType": "NOW",
                    "recipients": recipients,
                }
            },
        )
        return made.ok()["createSendingTask"]["id"]  # type: ignore[no-any-return]

    welcome = await task(first, "Spring", "Welcome aboard", ["ann@example.org", "Bob@Example.org"])
    receipt = await task(second, "Receipts", "Your receipt", ["carl@example.org"])
    api_send = (
        await api(
            SEND,
            {
                "input": {
                    "templateId": first.template_id,
                    "senderAddressId": first.sender_address_id,
                    "subject": "Welcome back",
                    "to": "dora@example.org",
                }
            },
        )
    ).ok()["sendEmail"]["messageId"]
    now = utcnow()
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Message)
            .where(Message.task_id == receipt)  # type: ignore[arg-type]
            .values(status=MessageStatus.DELIVERED, received_at=now, finished_at=now)
        )
    return {
        "first": first,
        "second": second,
        "welcome": welcome,
        "receipt": receipt,
        "api": api_send,
    }


async def test_every_filter(api: Api, sent: dict[str, Any]) -> None:
    everything = await details(api)
    assert len(everything) == 4
    ids = [d["messageId"] for d in everything]
    assert ids == sorted(ids, reverse=True)  # newest first
    api_row = next(d for d in everything if d["messageId"] == sent["api"])
    assert api_row["sendMethod"] == "API" and api_row["task"] is None
    assert api_row["template"]["name"] == "Welcome"

    def recipients(rows: list[dict[str, Any]]) -> list[str]:
        return sorted(r["recipient"] for r in rows)

    assert recipients(await details(api, templateName="welcome")) == [
        "Bob@example.org",
        "ann@example.org",
        "dora@example.org",
    ]
    assert recipients(await details(api, templateName="Welc")) == []  # whole names only
    assert recipients(await details(api, templateId=sent["second"].template_id)) == [
        "carl@example.org"
    ]
    assert recipients(await details(api, taskName="spring")) == [
        "Bob@example.org",
        "ann@example.org",
    ]
    assert recipients(await details(api, taskId=sent["receipt"])) == ["carl@example.org"]
    assert recipients(await details(api, subject="welcome")) == [
        "Bob@example.org",
        "ann@example.org",
        "dora@example.org",
    ]
    assert recipients(await details(api, subject="Welcome back")) == ["dora@example.org"]
    assert recipients(await details(api, sender=sent["second"].sender.upper())) == [
        "carl@example.org"
    ]
    # Exact address; the domain in any case (local parts are case-sensitive by RFC 5321).
    assert recipients(await details(api, recipient="Bob@Example.ORG")) == ["Bob@example.org"]
    assert recipients(await details(api, recipient="ann@example.org")) == ["ann@example.org"]
    assert recipients(await details(api, recipient="example.org")) == []
    delivered = await details(api, status="DELIVERED")
    assert recipients(delivered) == ["carl@example.org"] and delivered[0]["receivedAt"]
    assert recipients(await details(api, sendMethod="API")) == ["dora@example.org"]
    assert recipients(await details(api, sendMethod="CONSOLE", status="TO_SEND")) == [
        "Bob@example.org",
        "ann@example.org",
    ]
    later = utcnow() + timedelta(days=1)
    empty = {"createdFrom": later.isoformat(), "createdTo": (later + timedelta(days=1)).isoformat()}
    page = (await api(DETAILS, {"filter": empty})).ok()["sendingDetails"]
    assert page["totalCount"] == 0


async def test_range_is_required_and_at_most_a_year(api: Api, enterprise: EnterpriseHandle) -> None:
    now = utcnow()
    too_long = {
        "createdFrom": (now - timedelta(days=367)).isoformat(),
        "createdTo": now.isoformat(),
    }
    (await api(DETAILS, {"filter": too_long})).error("BAD_USER_INPUT", "createdTo")
    year = {"createdFrom": (now - timedelta(days=366)).isoformat(), "createdTo": now.isoformat()}
    (await api(DETAILS, {"filter": year})).ok()
    backwards = {"createdFrom": now.isoformat(), "createdTo": (now - timedelta(days=1)).isoformat()}
    (await api(DETAILS, {"filter": backwards})).error("BAD_USER_INPUT", "createdTo")
    (await api(DETAILS, {"filter": {"createdFrom": now.isoformat()}})).error("BAD_USER_INPUT")


async def test_other_tenants_see_nothing(
    api: Api, sent: dict[str, Any], make_enterprise: Any
) -> None:
    other = await make_enterprise("Other")
    assert await details(api, key=other.key) == []
    assert await details(api, key=other.key, taskId=sent["welcome"]) == []


async def test_pages_cover_each_row_once_while_rows_arrive(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime
) -> None:
    setup = await sendable_setup(api, runtime)

    async def send(to: str) -> str:
        variables = {
            "input": {
                "templateId": setup.template_id,
                "senderAddressId": setup.sender_address_id,
                "subject": "Hi",
                "to": to,
            }
        }
        return (await api(SEND, variables)).ok()["sendEmail"]["messageId"]  # type: ignore[no-any-return]

    existing = [await send(f"r{i}@example.org") for i in range(7)]
    seen: list[str] = []
    after = None
    filter = window()
    while True:
        page = (await api(DETAILS, {"filter": filter, "first": 3, "after": after})).ok()[
            "sendingDetails"
        ]
        seen += [e["node"]["messageId"] for e in page["edges"]]
        await send(f"new{len(seen)}@example.org")  # arrives between page requests
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(existing, reverse=True)
