from __future__ import annotations

from typing import Any, cast

import strawberry

from koomsg.core.clock import utcnow
from koomsg.core.tasks import service as tasks
from koomsg.core.tasks import transactional
from koomsg.core.tasks.models import SendingType as CoreSendingType
from koomsg.core.tasks.uploads import UploadStore, remove_file
from koomsg.schema.context import Info
from koomsg.schema.tasks.types import (
    CreateSendingTaskInput,
    SendEmailInput,
    SendingDetail,
    SendingTask,
)


@strawberry.type
class TaskMutation:
    @strawberry.mutation(
        description="Create a sending task. Everything is checked before anything is saved. "
        "Typed recipients are queued at once; a recipient file is imported in the background "
        "(status PREPARING, then SENDING or SCHEDULED)."
    )
    async def create_sending_task(self, info: Info, input: CreateSendingTaskInput) -> SendingTask:
        draft = tasks.TaskDraft(
            name=input.name,
            subject=input.subject,
            template_id=input.template_id,
            sender_address_id=input.sender_address_id,
            sending_type=CoreSendingType(input.sending_type),
            scheduled_at=input.scheduled_at,
            recipients=input.recipients,
            # Uploads arrive as starlette UploadFiles (filename + async read).
            recipient_file=cast(Any, input.recipient_file),
            attachments=cast(Any, input.attachments or ()),
        )
        # The store removes a saved recipient file if validation or the commit fails.
        async with (
            UploadStore.scope(info.context.runtime.settings.data_dir) as store,
            info.context.write("KooMessage:devSendTask:create") as (session, principal),
        ):
            row = await tasks.create_task(
                session, principal=principal, draft=draft, store=store, now=utcnow()
            )
        tasks.request_import(row, enqueue=info.context.runtime.enqueue_import)
        return SendingTask.from_row(row)

    @strawberry.mutation(
        description="Cancel a SCHEDULED or PREPARING task: none of its messages is sent. "
        "Tasks that started sending or ended cannot be canceled (PRECONDITION_FAILED)."
    )
    async def cancel_sending_task(self, info: Info, id: strawberry.ID) -> SendingTask:
        async with info.context.write("KooMessage:devSendTask:cancel") as (session, principal):
            row, leftover = await tasks.cancel_task(
                session, principal=principal, task_id=id, now=utcnow()
            )
        remove_file(leftover)
        return SendingTask.from_row(row)

    @strawberry.mutation(
        description="Send one transactional email (sendMethod API). With an idempotencyKey, "
        "repeating the call within 24 hours returns the first message."
    )
    async def send_email(self, info: Info, input: SendEmailInput) -> SendingDetail:
        request = input.to_request()
        async with info.context.write("KooMessage:email:send") as (session, principal):
            message = await transactional.send_email(
                session, principal=principal, request=request, now=utcnow()
            )
        return SendingDetail.from_row(message)
