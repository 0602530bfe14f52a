from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.principal import Principal
from koomsg.core.tasks import service as tasks
from koomsg.schema.node import register_node
from koomsg.schema.tasks.types import SendingTask


async def _task(session: AsyncSession, principal: Principal, ident: str) -> SendingTask:
    return SendingTask.from_row(await tasks.get_task(session, principal=principal, task_id=ident))


register_node("tsk", "KooMessage:devSendTask:list", _task)
