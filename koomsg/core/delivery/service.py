"""Starting delivery: the hand-off from tasks (and API sends) to the pipeline.

Tasks write their message rows (TO_SEND) and call ``start_task``; the
dispatcher then enqueues every row whose ``dispatch_after`` has come, so an
API crash between commit and enqueue loses nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.delivery.models import PENDING_STATUSES, Message, MessageStatus
from koomsg.core.notices import changed
from koomsg.core.tasks.models import SendingTask, TaskStatus


async def start_task(session: AsyncSession, *, task: SendingTask, now: datetime) -> None:
    """Move ``task`` to SENDING and make its waiting messages due now.

    A task none of whose messages is pending (all suppressed, say) is
    COMPLETED at once.
    """
    task.status = TaskStatus.SENDING
    task.started_at = task.started_at or now
    session.add(task)
    # Rows written by koomsg's writer are due from their insert on (the dispatcher gates
    # them on this task's status); this only catches rows inserted without a due time.
    await session.execute(
        update(Message)
        .where(
            Message.task_id == task.id,  # type: ignore[arg-type]
            Message.status == MessageStatus.TO_SEND,  # type: ignore[arg-type]
            Message.dispatch_after.is_(None),  # type: ignore[union-attr]
        )
        .values(dispatch_after=now)
    )
    await session.flush()
    await complete_task_if_done(session, task_id=task.id, now=now)


async def complete_task_if_done(session: AsyncSession, *, task_id: str, now: datetime) -> bool:
    """COMPLETED only when no message of the task is pending: never before.

    Called whenever a task's messages changed (outcomes recorded, the task started),
    so it is also where the task's followers are told (after commit).
    """
    changed(session, task_id)
    # One pending row is enough to answer: after every batch of a big task, counting them
    # all would walk most of the task's index entries.
    pending = (
        await session.execute(
            select(Message.id)  # type: ignore[call-overload]
            .where(Message.task_id == task_id, Message.status.in_(PENDING_STATUSES))  # type: ignore[arg-type,attr-defined]
            .limit(1)
        )
    ).first()
    if pending is not None:
        return False
    result = await session.execute(
        update(SendingTask)
        .where(SendingTask.id == task_id, SendingTask.status == TaskStatus.SENDING)  # type: ignore[arg-type]
        .values(status=TaskStatus.COMPLETED, finished_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
