"""Bulk message rows: subjects rendered, suppressed recipients REJECTED, ids in order."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import select

from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.recipients import writer
from koomsg.core.recipients.models import Suppression, SuppressionReason
from koomsg.core.recipients.writer import params_encoder, subject_filler, write_messages, write_rows
from koomsg.core.tasks.models import SendingTask, SendingType
from koomsg.core.templates.render import render_subject
from koomsg.runtime import Runtime
from koomsg.testing.plugin import EnterpriseHandle

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


TRICKY = ['Zoë "Z" \\o/', "line\r\nBcc: x", "\u2028 \U0001f600", "tab\there", "", " ", "{{name}}"]


def test_subject_filler_renders_as_render_subject() -> None:
    names = ["name", "code"]
    for subject in ["Hello {{name}}", "{{ code }}/{{name}}/{{missing}}", "plain", "x" * 2000]:
        fill = subject_filler(subject, names)
        for value in [*TRICKY, None, 42, "y" * 2000]:
            values = [value, "c\x7f\x00d"]
            expected = render_subject(subject, dict(zip(names, values, strict=True)))[:1024]
            assert fill(values) == expected


def test_params_encoder_writes_what_json_dumps_writes() -> None:
    names = ["name", "code", "é"]
    encode = params_encoder(names)
    for value in [*TRICKY, None, 42]:
        values = [value, "1", "\x00"]
        assert encode(values) == json.dumps(dict(zip(names, values, strict=True)))
    assert params_encoder([])([]) == json.dumps({})
    assert params_encoder(["a", "a"])(["1", "2"]) == json.dumps({"a": "2"})


@pytest.mark.parametrize("sqlite_json", [True, False])
async def test_fast_rows_read_back_as_orm_rows(
    runtime: Runtime,
    enterprise: EnterpriseHandle,
    monkeypatch: pytest.MonkeyPatch,
    sqlite_json: bool,
) -> None:
    monkeypatch.setattr(writer, "SQLITE_JSON", sqlite_json)  # SQLite's executemany fallback
    task = SendingTask(
        enterprise_id=enterprise.id, name="t", subject="Hi {{name}}", template_id="tpl_1",
        template_name="welcome", body_type="PLAIN_TEXT", body="{{name}}", params=["name", "code"],
        sender_address_id="adr_1", sender_domain_id="dom_1", sender_address="news@shop.example",
        sending_type=SendingType.NOW,
    )  # fmt: skip
    rows = [(f"u{i}@example.org", value, str(i)) for i, value in enumerate(TRICKY)]
    async with runtime.db.transaction() as session:
        session.add(task)
        await session.flush()
        result = await write_rows(session, task=task, rows=rows, now=NOW)
        # The reference: the same row as the ORM writes it.
        session.add(
            Message(
                id="msg_0", enterprise_id=enterprise.id, task_id=task.id, template_id="tpl_1",
                template_name="welcome", sender_address_id="adr_1", sender="news@shop.example",
                recipient=rows[0][0], subject=f"Hi {rows[0][1]}",
                params={"name": rows[0][1], "code": "0"}, created_at=NOW,
            )
        )  # fmt: skip
    assert (result.written, result.rejected) == (len(TRICKY), 0)
    async with runtime.db.session() as session:
        written = (
            await session.exec(
                select(Message).where(Message.task_id == task.id).order_by(Message.id)
            )
        ).all()
        raw = (
            await session.execute(
                text("SELECT id, params, created_at FROM message WHERE task_id = :task"),
                {"task": task.id},
            )
        ).all()
    reference, fast = written[0], written[1:]
    assert reference.id == "msg_0" and [m.recipient for m in fast] == [r[0] for r in rows]
    for message, (_, name, code) in zip(fast, rows, strict=True):
        assert message.params == {"name": name, "code": code}
        assert message.subject == render_subject("Hi {{name}}", {"name": name})
        assert message.created_at == NOW and message.created_at.tzinfo is not None
        assert (message.status, message.finished_at, message.failure_reason) == (
            MessageStatus.TO_SEND, None, None
        )  # fmt: skip
        # Due at once: the dispatcher gates them on the task's status instead.
        assert message.dispatch_after == NOW and message.attempts == 0
    stored = {row[0]: row[1:] for row in raw}
    # Byte for byte what the ORM stores, not only equal once read back.
    assert stored[fast[0].id] == stored["msg_0"]
