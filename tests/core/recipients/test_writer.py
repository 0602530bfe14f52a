"""Bulk message rows: subjects rendered, suppressed recipients REJECTED, ids in order."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.recipients.models import Suppression, SuppressionReason
from koomsg.core.recipients.writer import write_messages
from koomsg.core.tasks.models import SendingTask, SendingType
from koomsg.runtime import Runtime
from koomsg.testing import EnterpriseHandle

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def test_write_messages(runtime: Runtime, enterprise: EnterpriseHandle) -> None:
    task = SendingTask(
        enterprise_id=enterprise.id, name="t", subject="Hi {{name}}", template_id="tpl_1",
        template_name="welcome", body_type="PLAIN_TEXT", body="{{name}}", params=["name"],
        sender_address_id="adr_1", sender_domain_id="dom_1", sender_address="news@shop.example",
        sending_type=SendingType.NOW,
    )  # fmt: skip
    async with runtime.db.transaction() as session:
        session.add(
            Suppression(
                enterprise_id=enterprise.id,
                address="bob@example.org",
                reason=SuppressionReason.UNSUBSCRIBED,
            )
        )
        session.add(task)
        await session.flush()
        recipients = [(f"u{i}@example.org", {"name": f"U{i}\r\nBcc: x"}) for i in range(4500)]
        result = await write_messages(
            session,
            task=task,
            recipients=[*recipients, ("Bob@example.org", {"name": "Bob"})],
            now=NOW,
        )
    assert (result.written, result.rejected) == (4501, 1)
    async with runtime.db.session() as session:
        rows = (
            await session.exec(
                select(Message).where(Message.task_id == task.id).order_by(Message.id)
            )
        ).all()
    assert [m.recipient for m in rows[:2]] == ["u0@example.org", "u1@example.org"]
    assert rows[0].subject == "Hi U0 Bcc: x" and rows[0].status == MessageStatus.TO_SEND
    assert rows[0].params == {"name": "U0\r\nBcc: x"} and rows[0].created_at == NOW
    bob = rows[-1]
    assert (bob.status, bob.failure_reason) == (
        MessageStatus.REJECTED,
        "recipient is on the suppression list (unsubscribed)",
    )
    assert bob.finished_at == NOW
