from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import strawberry

from koomsg.core.tasks import service as tasks
from koomsg.core.tasks.models import TaskStatus
from koomsg.schema.context import Info
from koomsg.schema.tasks.types import SendingTask

POLL_SECONDS = 0.3


@strawberry.type
class TaskSubscription:
    @strawberry.subscription(
        description="The task with its counts, pushed whenever they change; ends after the task "
        "reaches COMPLETED, CANCELED or FAILED (that last state is pushed first)."
    )
    async def task_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[SendingTask, None]:
        async with info.context.read("KooMessage:devSendTask:list") as (session, principal):
            await tasks.get_task(session, principal=principal, task_id=id)
        last: object = None
        while True:
            # Workers may be other processes: the database is the only place to look.
            # Each poll authenticates and authorizes again: a revoked key's stream stops.
            async with info.context.read("KooMessage:devSendTask:list") as (session, principal):
                row = await tasks.get_task(session, principal=principal, task_id=id)
                counts = (await tasks.counts_for(session, [row.id]))[row.id]
            state = (row.status, counts)
            if state != last:
                last = state
                # Loaders cache for the whole connection; each push must read afresh.
                info.context.loaders.clear()
                yield SendingTask.from_row(row)
            if TaskStatus(row.status).is_final:
                return
            await asyncio.sleep(POLL_SECONDS)
