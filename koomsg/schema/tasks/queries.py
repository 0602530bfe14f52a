from __future__ import annotations

import strawberry

from koomsg.core.tasks import details
from koomsg.core.tasks import service as tasks
from koomsg.schema.common import Connection, to_connection
from koomsg.schema.context import Info
from koomsg.schema.tasks.types import (
    SendingDetail,
    SendingDetailFilter,
    SendingTask,
    SendingTaskFilter,
)


@strawberry.type
class TaskQuery:
    @strawberry.field(description="The enterprise's sending tasks, newest first.")
    async def sending_tasks(
        self,
        info: Info,
        filter: SendingTaskFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SendingTask]:
        async with info.context.read("KooMessage:devSendTask:list") as (session, principal):
            page = await tasks.list_tasks(
                session,
                principal=principal,
                filter=filter.to_core() if filter else None,
                first=first,
                after=after,
            )
        return to_connection(page, SendingTask.from_row)

    @strawberry.field(
        description="Every message sent by tasks or sendEmail in a created range, newest first. "
        "Pages stay consistent while new messages arrive."
    )
    async def sending_details(
        self,
        info: Info,
        filter: SendingDetailFilter,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SendingDetail]:
        async with info.context.read("KooMessage:sendingDetail:list") as (session, principal):
            page = await details.list_details(
                session, principal=principal, filter=filter.to_core(), first=first, after=after
            )
        return to_connection(page, SendingDetail.from_row)
