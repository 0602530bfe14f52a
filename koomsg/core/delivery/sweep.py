"""Sweeping what a crash left: expired leases go back to TO_SEND, finished tasks complete."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import col

from koomsg.core.clock import utcnow
from koomsg.core.delivery.context import DeliveryContext
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.delivery.service import complete_task_if_done
from koomsg.core.tasks.models import SendingTask, TaskStatus

MESSAGE = Message.__table__  # type: ignore[attr-defined]


async def sweep(context: DeliveryContext, *, now: datetime | None = None) -> dict[str, int]:
    """Recover from crashes: expired leases go back to TO_SEND; finished tasks complete."""
    now = now or utcnow()
    async with context.db.transaction() as session:
        released = (
            await session.execute(
                update(MESSAGE)
                .where(MESSAGE.c.status == MessageStatus.SENDING, MESSAGE.c.lease_until < now)
                .values(
                    status=MessageStatus.TO_SEND,
                    dispatch_after=now,
                    lease_until=None,
                    lease_token=None,
                    changed_at=now,
                )
            )
        ).rowcount  # type: ignore[attr-defined]
        sending = (
            (
                await session.execute(
                    select(col(SendingTask.id)).where(col(SendingTask.status) == TaskStatus.SENDING)
                )  # type: ignore[arg-type]
            )
            .scalars()
            .all()
        )
        completed = 0
        for task_id in sending:
            completed += int(await complete_task_if_done(session, task_id=task_id, now=now))
    return {"released": int(released or 0), "completed": completed}
