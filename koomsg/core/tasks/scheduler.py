"""Starting SCHEDULED tasks when their time comes.

All state is in the database, so a restart loses nothing, and several
processes may run this at once: each task is claimed with a conditional
UPDATE (status still SCHEDULED and due), and only the process whose UPDATE
changed the row starts it, in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select

from koomsg.core.clock import utcnow
from koomsg.core.db import Database
from koomsg.core.delivery.service import start_task
from koomsg.core.tasks.models import SendingTask, TaskStatus
from koomsg.core.tenancy.suspension import not_suspended

BATCH = 100


async def start_due_tasks(db: Database, *, now: datetime | None = None, limit: int = BATCH) -> int:
    """Start up to ``limit`` due tasks; returns how many this call started."""
    now = now or utcnow()
    async with db.session() as session:
        due = (
            select(SendingTask.id)
            .where(
                SendingTask.status == TaskStatus.SCHEDULED,
                col(SendingTask.scheduled_at) <= now,
                # A suspended enterprise's due tasks stay SCHEDULED and start after its resume.
                not_suspended(col(SendingTask.enterprise_id)),
            )
            .order_by(col(SendingTask.scheduled_at))
            .limit(limit)
        )
        task_ids = list((await session.exec(due)).all())
    started = 0
    for task_id in task_ids:
        # One transaction per task: a failing task never holds back the others.
        async with db.transaction() as session:
            claimed = await session.execute(
                update(SendingTask)
                .where(
                    col(SendingTask.id) == task_id,
                    col(SendingTask.status) == TaskStatus.SCHEDULED,
                    col(SendingTask.scheduled_at) <= now,
                    not_suspended(col(SendingTask.enterprise_id)),
                )
                .values(status=TaskStatus.SENDING, started_at=now)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                continue  # another process started it, or it was canceled
            task = await session.get(SendingTask, task_id)
            assert task is not None
            await start_task(session, task=task, now=now)
            started += 1
    return started
