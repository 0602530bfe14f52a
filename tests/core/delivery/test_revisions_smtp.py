"""What reaches recipients is the approved revision: tasks and sendEmail over loopback SMTP.

The whole flow goes through the API (templates, review, tasks, sendEmail,
sending details); delivery is drained in-process and what the loopback SMTP
server received is read back as a recipient would see it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import update

from koomsg.core.clock import utcnow
from koomsg.core.domains.models import DomainStatus, SenderDomain
from koomsg.runtime import Runtime
from koomsg.testing.delivery import drain
from koomsg.testing.plugin import Api, EnterpriseHandle, WritesNothing
from koomsg.testing.smtp import ScriptedSMTPServer

TEMPLATE = "id revision approvedRevision status"
CREATE_TEMPLATE = (
    f"mutation($input: CreateTemplateInput!) {{ createTemplate(input: $input) {{ {TEMPLATE} }} }}"
)
UPDATE = (
    "mutation($id: ID!, $input: UpdateTemplateInput!) "
    f"{{ updateTemplate(id: $id, input: $input) {{ {TEMPLATE} }} }}"
)
APPROVE = (
    "mutation($id: ID!, $revision: Int) "
    f"{{ approveTemplate(id: $id, revision: $revision) {{ {TEMPLATE} }} }}"
)
CREATE_TASK = """mutation($input: CreateSendingTaskInput!) {
  createSendingTask(input: $input) { id templateRevision template { revision approvedRevision } } }"""
SEND = (
    "mutation($input: SendEmailInput!) { sendEmail(input: $input) { messageId templateRevision } }"
)
DETAILS = """query($filter: SendingDetailFilter!) { sendingDetails(filter: $filter, first: 100) {
  edges { node { messageId recipient status templateRevision task { templateRevision } } } } }"""
APPROVED_TEXT = "Approved wording"
UNREVIEWED_TEXT = "Unreviewed wording"


@pytest.fixture
def koomsg_env(smtp_server: ScriptedSMTPServer) -> dict[str, str]:
    return {"KOOMSG_TRANSPORT": "smtp", "KOOMSG_SMTP_URL": smtp_server.url}


class Sender:
    """An enterprise's template and sender address, and how it sends through the API."""

    def __init__(self, api: Api, key: str, template_id: str, address_id: str) -> None:
        self.api, self.key = api, key
        self.template_id, self.address_id = template_id, address_id

    async def task(self, recipient: str) -> dict[str, Any]:
        made = await self.api(
            CREATE_TASK,
            {
                "input": {
                    "name": f"to {recipient}",
                    "subject": "News",
                    "templateId": self.template_id,
                    "senderAddressId": self.address_id,
                    "sendingType": "NOW",
                    "recipients": [recipient],
                }
            },
            key=self.key,
        )
        return made.ok()["createSendingTask"]  # type: ignore[no-any-return]

    def email(self, recipient: str) -> dict[str, Any]:
        return {
            "input": {
                "templateId": self.template_id,
                "senderAddressId": self.address_id,
                "subject": "Your code",
                "to": recipient,
            }
        }

    async def send(self, recipient: str) -> dict[str, Any]:
        sent = await self.api(SEND, self.email(recipient), key=self.key)
        return sent.ok()["sendEmail"]  # type: ignore[no-any-return]

    async def edit(self, text: str) -> dict[str, Any]:
        body = {"input": {"body": f"<p>{text}</p>"}, "id": self.template_id}
        return (await self.api(UPDATE, body, key=self.key)).ok()["updateTemplate"]  # type: ignore[no-any-return]


async def sender_for(
    api: Api, runtime: Runtime, key: str, text: str, *, approve: bool
) -> tuple[Sender, dict[str, Any]]:
    template = (
        await api(
            CREATE_TEMPLATE,
            {"input": {"name": "Notice", "bodyType": "RICH_TEXT", "body": f"<p>{text}</p>"}},
            key=key,
        )
    ).ok()["createTemplate"]
    if approve:
        template = (await api(APPROVE, {"id": template["id"]}, key=api.keys["operator"])).ok()[
            "approveTemplate"
        ]
    domain = (
        await api(
            'mutation { createSenderDomain(input: {name: "mail.example.com"}) { id } }', key=key
        )
    ).ok()["createSenderDomain"]
    async with runtime.db.transaction() as session:
        # Real verification needs DNS; sending is what is tested here.
        await session.execute(
            update(SenderDomain)
            .where(SenderDomain.id == domain["id"])  # type: ignore[arg-type]
            .values(status=DomainStatus.VERIFICATION_PASSED)
        )
    address = (
        await api(
            'mutation($d: ID!) { createSenderAddress(input: {domainId: $d, prefix: "news"}) '
            "{ id } }",
            {"d": domain["id"]},
            key=key,
        )
    ).ok()["createSenderAddress"]
    return Sender(api, key, template["id"], address["id"]), template


def received(smtp_server: ScriptedSMTPServer) -> dict[str, str]:
    """Recipient -> the text a recipient reads (every decoded text part)."""
    texts: dict[str, str] = {}
    for message in smtp_server.handler.messages:
        parsed = message_from_bytes(message.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        parts = [p.get_content() for p in parsed.walk() if p.get_content_maintype() == "text"]
        for recipient in message.rcpt_tos:
            assert recipient not in texts, f"{recipient} received twice"
            texts[recipient] = "\n".join(parts)
    return texts


async def details(api: Api, key: str) -> dict[str, dict[str, Any]]:
    now = utcnow()
    window = {"createdFrom": (now - timedelta(hours=1)).isoformat(), "createdTo": now.isoformat()}
    page = (await api(DETAILS, {"filter": window}, key=key)).ok()["sendingDetails"]
    return {e["node"]["recipient"]: e["node"] for e in page["edges"]}


async def test_a_sensitive_edit_under_review_never_reaches_a_recipient(
    api: Api,
    runtime: Runtime,
    make_enterprise: Callable[..., Any],
    smtp_server: ScriptedSMTPServer,
) -> None:
    enterprise = await make_enterprise("Pharma", sensitive=True)
    sender, template = await sender_for(api, runtime, enterprise.key, APPROVED_TEXT, approve=True)
    assert (template["approvedRevision"], template["status"]) == (1, "APPROVED")
    before_task = await sender.task("task-before@example.net")
    before_api = await sender.send("api-before@example.net")
    edited = await sender.edit(UNREVIEWED_TEXT)
    assert (edited["status"], edited["revision"], edited["approvedRevision"]) == (
        "APPROVING",
        2,
        1,
    )
    after_task = await sender.task("task-after@example.net")
    after_api = await sender.send("api-after@example.net")
    assert [t["templateRevision"] for t in (before_task, after_task)] == [1, 1]
    assert after_task["template"] == {"revision": 2, "approvedRevision": 1}
    assert [m["templateRevision"] for m in (before_api, after_api)] == [1, 1]
    await drain(runtime)
    texts = received(smtp_server)
    assert sorted(texts) == [
        "api-after@example.net",
        "api-before@example.net",
        "task-after@example.net",
        "task-before@example.net",
    ]
    for recipient, text in texts.items():
        assert APPROVED_TEXT in text and UNREVIEWED_TEXT not in text, recipient

    # Sent before the approval, delivered after it: still revision 1. Sent after: revision 2.
    queued_task = await sender.task("task-queued@example.net")
    queued_api = await sender.send("api-queued@example.net")
    approved = (await api(APPROVE, {"id": sender.template_id}, key=api.keys["operator"])).ok()
    assert approved["approveTemplate"]["approvedRevision"] == 2
    new_task = await sender.task("task-new@example.net")
    new_api = await sender.send("api-new@example.net")
    assert (queued_task["templateRevision"], queued_api["templateRevision"]) == (1, 1)
    assert (new_task["templateRevision"], new_api["templateRevision"]) == (2, 2)
    await drain(runtime)
    texts = received(smtp_server)
    for recipient in ("task-queued@example.net", "api-queued@example.net"):
        assert APPROVED_TEXT in texts[recipient] and UNREVIEWED_TEXT not in texts[recipient]
    for recipient in ("task-new@example.net", "api-new@example.net"):
        assert UNREVIEWED_TEXT in texts[recipient] and APPROVED_TEXT not in texts[recipient]

    listed = await details(api, enterprise.key)
    assert {r: d["templateRevision"] for r, d in listed.items()} == {
        "task-before@example.net": 1,
        "api-before@example.net": 1,
        "task-after@example.net": 1,
        "api-after@example.net": 1,
        "task-queued@example.net": 1,
        "api-queued@example.net": 1,
        "task-new@example.net": 2,
        "api-new@example.net": 2,
    }
    assert listed["task-new@example.net"]["task"] == {"templateRevision": 2}
    assert {d["status"] for d in listed.values()} == {"DELIVERED"}


async def test_a_non_sensitive_edit_sends_at_once(
    api: Api, runtime: Runtime, enterprise: EnterpriseHandle, smtp_server: ScriptedSMTPServer
) -> None:
    sender, _ = await sender_for(api, runtime, enterprise.key, APPROVED_TEXT, approve=False)
    old_task = await sender.task("task-old@example.net")
    old_api = await sender.send("api-old@example.net")
    edited = await sender.edit(UNREVIEWED_TEXT)
    assert (edited["status"], edited["revision"], edited["approvedRevision"]) == (
        "APPROVED",
        2,
        2,
    )
    new_api = await sender.send("api-new@example.net")
    assert (old_task["templateRevision"], old_api["templateRevision"]) == (1, 1)
    assert new_api["templateRevision"] == 2
    await drain(runtime)
    texts = received(smtp_server)
    assert APPROVED_TEXT in texts["task-old@example.net"]
    assert APPROVED_TEXT in texts["api-old@example.net"]
    assert UNREVIEWED_TEXT in texts["api-new@example.net"]
    assert APPROVED_TEXT not in texts["api-new@example.net"]


async def test_a_template_never_approved_cannot_send(
    api: Api,
    runtime: Runtime,
    make_enterprise: Callable[..., Any],
    smtp_server: ScriptedSMTPServer,
    assert_writes_nothing: WritesNothing,
) -> None:
    enterprise = await make_enterprise("Pharma", sensitive=True)
    sender, template = await sender_for(api, runtime, enterprise.key, APPROVED_TEXT, approve=False)
    assert (template["status"], template["approvedRevision"]) == ("APPROVING", None)
    await sender.edit(UNREVIEWED_TEXT)  # a second unreviewed revision changes nothing
    task = {
        "input": {
            "name": "never",
            "subject": "News",
            "templateId": sender.template_id,
            "senderAddressId": sender.address_id,
            "sendingType": "NOW",
            "recipients": ["x@example.net"],
        }
    }
    async with assert_writes_nothing():
        refused = (await api(CREATE_TASK, task, key=sender.key)).error(
            "PRECONDITION_FAILED", "templateId"
        )
        assert "no approved revision" in refused["message"]
        (await api(SEND, sender.email("x@example.net"), key=sender.key)).error(
            "PRECONDITION_FAILED", "templateId"
        )
    await drain(runtime)
    assert smtp_server.handler.messages == []
