"""``taskProgress``: the task pushed whenever it changes, woken by change notices.

Whatever changes a task announces it after commit (``core/notices.py``); the
subscription then reads the task once and pushes it if its status or counts
moved. It also re-reads every ``RECHECK_SECONDS`` without a notice: notices
from a process without a relay (a RabbitMQ worker) or lost in transit cost a
few seconds, never a stuck stream. Each read authenticates again, and a
revoked key's notice wakes its streams at once, so they stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import strawberry

from koomsg.core.errors import BadInput
from koomsg.core.notices import HUB, key_topic
from koomsg.core.tasks import service as tasks
from koomsg.core.tasks.models import SendingTask as TaskRow
from koomsg.core.tasks.models import TaskStatus
from koomsg.schema.context import Context, Info
from koomsg.schema.tasks.types import SendingTask

RECHECK_SECONDS = 5.0


@contextlib.asynccontextmanager
async def _slot(context: Context) -> AsyncIterator[None]:
    """One of the connection's taskProgress slots, or BAD_USER_INPUT when all are taken."""
    limit = context.runtime.settings.max_subscriptions_per_connection
    if context.open_subscriptions >= limit:
        raise BadInput(
            "id",
            f"at most {limit} taskProgress subscriptions may run on one connection "
            "(KOOMSG_MAX_SUBSCRIPTIONS_PER_CONNECTION): stop one, or follow several tasks "
            "with sendingTasks",
        )
    context.open_subscriptions += 1
    try:
        yield
    finally:
        context.open_subscriptions -= 1


async def _read(info: Info, task_id: str) -> tuple[TaskRow, tasks.TaskCounts, str]:
    async with info.context.read("KooMessage:devSendTask:list") as (session, principal):
        row = await tasks.get_task(session, principal=principal, task_id=task_id)
        counts = (await tasks.counts_for(session, [row.id]))[row.id]
    return row, counts, principal.key_id


@strawberry.type
class TaskSubscription:
    @strawberry.subscription(
        description="The task with its counts, pushed whenever they change; ends after the task "
        "reaches COMPLETED, CANCELED or FAILED (that last state is pushed first). At most "
        "KOOMSG_MAX_SUBSCRIPTIONS_PER_CONNECTION (default 10) run on one connection."
    )
    async def task_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[SendingTask, None]:
        async with _slot(info.context):
            first, _, key_id = await _read(info, id)  # unknown task, bad key: refused here
            # Listening before the reads below: a change committed meanwhile is not missed.
            with HUB.listen(first.id, key_topic(key_id)) as listener:
                last: object = None
                while True:
                    row, counts, _ = await _read(info, first.id)
                    if (row.status, counts) != last:
                        last = (row.status, counts)
                        # Loaders cache for the whole connection; each push must read afresh.
                        info.context.loaders.clear()
                        yield SendingTask.from_row(row)
                    if TaskStatus(row.status).is_final:
                        return
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(RECHECK_SECONDS):
                            await listener.wait()
