"""Building tasks and draining the pipeline by hand, for deterministic delivery tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from koomsg.core.clock import utcnow
from koomsg.core.delivery.batch import deliver_batch
from koomsg.core.delivery.dispatch import dispatch_due
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.delivery.service import start_task
from koomsg.core.tasks.models import SendingTask, SendingType, TaskStatus
from koomsg.runtime import Runtime
from koomsg.testing.plugin import SendableSetup


async def make_task(
    runtime: Runtime,
    setup: SendableSetup,
    enterprise_id: str,
    recipients: Sequence[str],
    *,
    body: str = '<p>Hello {{name}}, see <a href="https://example.com/offer?a=1&amp;b=2">the offer</a></p>',
    subject: str = "Hi {{name}}",
    support_unsubscribe: bool = False,
    start: bool = True,
) -> SendingTask:
    now = utcnow()
    async with runtime.db.transaction() as session:
        task = SendingTask(
            enterprise_id=enterprise_id,
            name="pipeline test",
            subject=subject,
            template_id=setup.template_id,
            template_name="Welcome",
            body_type="RICH_TEXT",
            body=body,
            params=["name"],
            support_unsubscribe=support_unsubscribe,
            sender_address_id=setup.sender_address_id,
            sender_domain_id=setup.domain_id,
            sender_address=setup.sender,
            sender_alias="News Desk",
            sending_type=SendingType.NOW,
        )
        session.add(task)
        await session.flush()
        for index, recipient in enumerate(recipients):
            session.add(
                Message(
                    enterprise_id=enterprise_id,
                    task_id=task.id,
                    template_id=setup.template_id,
                    template_name="Welcome",
                    sender_address_id=setup.sender_address_id,
                    sender=setup.sender,
                    recipient=recipient,
                    subject=f"Hi user{index}",
                    params={"name": f"user{index}"},
                )
            )
        await session.flush()
        if start:
            await start_task(session, task=task, now=now)
    return task


def _collector(batches: list[tuple[str, list[str]]]) -> Any:
    def enqueue(token: str, ids: list[str]) -> None:
        batches.append((token, ids))

    return enqueue


async def drain(runtime: Runtime, *, now: datetime | None = None, rounds: int = 5) -> list[Any]:
    """Dispatch what is due and deliver every batch in-process; returns the batch reports."""
    reports = []
    for _ in range(rounds):
        batches: list[tuple[str, list[str]]] = []
        await dispatch_due(runtime.delivery, enqueue=_collector(batches), now=now)
        if not batches:
            break
        for token, ids in batches:
            reports.append(await deliver_batch(runtime.delivery, token=token, message_ids=ids))
    return reports


async def statuses(runtime: Runtime, task_id: str) -> dict[str, Message]:
    from sqlmodel import select

    async with runtime.db.session() as session:
        rows = (await session.exec(select(Message).where(Message.task_id == task_id))).all()
    return {row.recipient: row for row in rows}


async def task_status(runtime: Runtime, task_id: str) -> TaskStatus:
    async with runtime.db.session() as session:
        task = await session.get(SendingTask, task_id)
        assert task is not None
        return TaskStatus(task.status)


def later(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


__all__ = ["MessageStatus", "drain", "later", "make_task", "statuses", "task_status"]
