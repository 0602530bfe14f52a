from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import strawberry
from strawberry.file_uploads import Upload
from strawberry.scalars import JSON

from koomsg.core.delivery import models as delivery
from koomsg.core.tasks import models, transactional
from koomsg.core.tasks import service as tasks
from koomsg.core.tasks.addresses import display_address
from koomsg.core.tasks.details import DetailFilter
from koomsg.core.tasks.import_errors import error_cursor, error_page
from koomsg.core.templates.models import BodyType as CoreBodyType
from koomsg.core.templates.models import TemplateStatus as CoreTemplateStatus
from koomsg.schema.addresses.types import SenderAddress
from koomsg.schema.common import Node
from koomsg.schema.context import Info, loader
from koomsg.schema.tasks import loaders
from koomsg.schema.templates.types import Template

if TYPE_CHECKING:  # mypy sees the core enums; strawberry gets them with descriptions
    from koomsg.core.delivery.models import MessageStatus, SendMethod
    from koomsg.core.tasks.models import SendingType, TaskStatus
else:
    SendingType = strawberry.enum(
        models.SendingType, description="NOW starts at once; SCHEDULED starts at scheduledAt."
    )
    TaskStatus = strawberry.enum(
        models.TaskStatus,
        description="PREPARING: the recipient file is being imported. SCHEDULED: waiting for "
        "scheduledAt. SENDING, then COMPLETED once every message has an outcome. CANCELED: "
        "canceled before it started (its unsent messages are removed). FAILED: e.g. the "
        "recipient file could not be read.",
    )
    SendMethod = strawberry.enum(
        delivery.SendMethod,
        description="CONSOLE: part of a sending task. API: sent with sendEmail.",
    )
    MessageStatus = strawberry.enum(
        delivery.MessageStatus,
        description="TO_SEND (waiting), SENDING (handed to a worker), DELIVERED (the receiving "
        "server accepted it), FAILED (refused or undeliverable), REJECTED (never sent, e.g. the "
        "recipient is on the suppression list).",
    )


@strawberry.type(description="How a task's messages stand.")
class TaskCounts:
    total: int = strawberry.field(description="Messages of the task.")
    to_send: int = strawberry.field(description="Not sent yet (TO_SEND or SENDING).")
    delivered: int
    failed: int
    rejected: int = strawberry.field(description="Never sent, e.g. suppressed recipients.")

    @classmethod
    def from_core(cls, counts: tasks.TaskCounts) -> TaskCounts:
        return cls(
            total=counts.total,
            to_send=counts.to_send,
            delivered=counts.delivered,
            failed=counts.failed,
            rejected=counts.rejected,
        )


@strawberry.type(description="A row of a recipient file that was not imported, and why.")
class RecipientImportError:
    row: int = strawberry.field(description="The row number in the file (the header is row 1).")
    value: str | None = strawberry.field(description="The offending value, when there is one.")
    reason: str
    cursor: str = strawberry.field(
        description="Pass it as importErrors(after:) to read the errors after this one."
    )


def _snapshot_template(row: models.SendingTask) -> Template:
    # The template was deleted after the task finished: show what the task sent.
    return Template(
        id=strawberry.ID(row.template_id),
        name=row.template_name,
        body_type=CoreBodyType(row.body_type),  # type: ignore[arg-type]
        body=row.body,
        params=list(row.params),
        support_unsubscribe=row.support_unsubscribe,
        public=False,
        status=CoreTemplateStatus.APPROVED,  # type: ignore[arg-type]
        review_comment=None,
        enterprise_id=strawberry.ID(row.enterprise_id),
        revision=row.template_revision,
        approved_revision=row.template_revision,
        created_at=row.created_at,
        row=row,
    )


@strawberry.type(
    description="A campaign: one subject and template sent to many recipients, now or later."
)
class SendingTask(Node):
    id: strawberry.ID
    name: str
    subject: str = strawberry.field(description="May use the template's {{parameters}}.")
    sending_type: SendingType
    scheduled_at: datetime | None
    status: TaskStatus
    failure_reason: str | None = strawberry.field(description="Why the task FAILED.")
    created_at: datetime
    started_at: datetime | None = strawberry.field(description="When sending began.")
    finished_at: datetime | None = strawberry.field(
        description="When it completed or was canceled."
    )
    template_revision: int = strawberry.field(
        description="The template revision the task was created with (the approved one then); "
        "it sends that revision whatever edits follow."
    )
    row: strawberry.Private[models.SendingTask]

    @strawberry.field(
        description="The template (as the task snapshotted it if it was deleted since)."
    )
    async def template(self, info: Info) -> Template:
        live = await loader(info, "tasks.template", loaders.templates_by_id).load(
            self.row.template_id
        )
        return Template.from_row(live) if live is not None else _snapshot_template(self.row)

    @strawberry.field(description="The sender address.")
    async def sender(self, info: Info) -> SenderAddress:
        found = await loader(info, "tasks.sender", loaders.senders_by_id).load(
            self.row.sender_address_id
        )
        if found is not None:
            return SenderAddress.from_row(*found)
        prefix = self.row.sender_address.rsplit("@", 1)[0]
        return SenderAddress(
            id=strawberry.ID(self.row.sender_address_id),
            prefix=prefix,
            alias=self.row.sender_alias,
            address=self.row.sender_address,
            created_at=self.row.created_at,
            domain_id=self.row.sender_domain_id,
        )

    @strawberry.field(description="How its messages stand.")
    async def counts(self, info: Info) -> TaskCounts:
        found = await loader(info, "tasks.counts", loaders.counts_by_task).load(self.row.id)
        return TaskCounts.from_core(found)

    @strawberry.field(
        description="Rows of the recipient file that were skipped, in file order: `first` of "
        "them (default 20, at most 100) after the error whose `cursor` is `after`. "
        "importErrorCount says how many there are."
    )
    async def import_errors(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> list[RecipientImportError]:
        page = error_page(self.row.id, first=first, after=after)
        found = await loader(info, "tasks.import_errors", loaders.import_error_pages).load(page)
        return [
            RecipientImportError(row=e.row, value=e.value, reason=e.reason, cursor=error_cursor(e))
            for e in found
        ]

    @strawberry.field(
        description="How many rows of the recipient file were skipped (the first 5 000 are "
        "listed in importErrors)."
    )
    def import_error_count(self) -> int:
        return self.row.import_error_count

    @classmethod
    def from_row(cls, row: models.SendingTask) -> SendingTask:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            subject=row.subject,
            sending_type=models.SendingType(row.sending_type),
            scheduled_at=row.scheduled_at,
            status=models.TaskStatus(row.status),
            failure_reason=row.failure_reason,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            template_revision=row.template_revision,
            row=row,
        )


@strawberry.type(description="One message: who it went to, how it was sent and how it ended.")
class SendingDetail:
    message_id: strawberry.ID
    send_method: SendMethod
    status: MessageStatus
    subject: str = strawberry.field(description="As sent, with parameters filled in.")
    sender: str = strawberry.field(description="The sender address.")
    recipient: str
    created_at: datetime
    received_at: datetime | None = strawberry.field(
        description="When the receiving server accepted it."
    )
    failure_reason: str | None = strawberry.field(description="Why it FAILED or was REJECTED.")
    template_revision: int | None = strawberry.field(
        description="The template revision the message is built from; null for messages "
        "accepted before templates had revisions."
    )
    task_id: strawberry.Private[str | None]
    template_id: strawberry.Private[str]

    @strawberry.field(description="The sending task; null for messages sent with sendEmail.")
    async def task(self, info: Info) -> SendingTask | None:
        if self.task_id is None:
            return None
        row = await loader(info, "tasks.by_id", loaders.tasks_by_id).load(self.task_id)
        return SendingTask.from_row(row) if row is not None else None

    @strawberry.field(description="The template; null if it was deleted since.")
    async def template(self, info: Info) -> Template | None:
        row = await loader(info, "tasks.template", loaders.templates_by_id).load(self.template_id)
        return Template.from_row(row) if row is not None else None

    @classmethod
    def from_row(cls, row: delivery.Message) -> SendingDetail:
        return cls(
            message_id=strawberry.ID(row.id),
            send_method=delivery.SendMethod(row.send_method),
            status=delivery.MessageStatus(row.status),
            subject=row.subject,
            sender=row.sender,
            recipient=display_address(row.recipient),
            created_at=row.created_at,
            received_at=row.received_at,
            failure_reason=row.failure_reason,
            template_revision=row.template_revision,
            task_id=row.task_id,
            template_id=row.template_id,
        )


@strawberry.input(description="Narrow the task list; all given conditions must hold.")
class SendingTaskFilter:
    name: str | None = strawberry.field(
        default=None, description="Part of the task name, any case."
    )
    template_name: str | None = strawberry.field(
        default=None, description="Part of the template title, any case."
    )
    template_id: strawberry.ID | None = None
    status: TaskStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    def to_core(self) -> tasks.TaskFilter:
        return tasks.TaskFilter(
            name=self.name,
            template_name=self.template_name,
            template_id=self.template_id,
            status=models.TaskStatus(self.status) if self.status else None,
            created_from=self.created_from,
            created_to=self.created_to,
        )


@strawberry.input(
    description="Which messages to show. The created range is required and spans at most 366 "
    "days. Text filters: recipient is the exact address (its domain in any case); sender, "
    "templateName and taskName are whole values in any case; subject matches the beginning "
    "of the subject."
)
class SendingDetailFilter:
    created_from: datetime
    created_to: datetime
    template_name: str | None = None
    template_id: strawberry.ID | None = None
    task_name: str | None = None
    task_id: strawberry.ID | None = None
    subject: str | None = strawberry.field(
        default=None, description="The beginning of the subject."
    )
    sender: str | None = None
    recipient: str | None = None
    status: MessageStatus | None = None
    send_method: SendMethod | None = None

    def to_core(self) -> DetailFilter:
        return DetailFilter(
            created_from=self.created_from,
            created_to=self.created_to,
            template_name=self.template_name,
            template_id=self.template_id,
            task_name=self.task_name,
            task_id=self.task_id,
            subject=self.subject,
            sender=self.sender,
            recipient=self.recipient,
            status=delivery.MessageStatus(self.status) if self.status else None,
            send_method=delivery.SendMethod(self.send_method) if self.send_method else None,
        )


@strawberry.input
class CreateSendingTaskInput:
    name: str = strawberry.field(description="1 to 128 characters.")
    subject: str = strawberry.field(
        description="1 to 256 characters on one line; may use the template's {{parameters}}."
    )
    template_id: strawberry.ID = strawberry.field(description="An APPROVED template.")
    sender_address_id: strawberry.ID = strawberry.field(
        description="A sender address whose domain passed verification."
    )
    sending_type: SendingType
    scheduled_at: datetime | None = strawberry.field(
        default=None, description="Required for SCHEDULED: in the future, at most 90 days ahead."
    )
    recipients: list[str] | None = strawberry.field(
        default=None,
        description="Typed by hand: at most 10 addresses, for templates without parameters. "
        "Give this or recipientFile.",
    )
    recipient_file: Upload | None = strawberry.field(
        default=None,
        description='An .xlsx (or .csv) file of at most 40 MB: a header row with "email" and '
        "one column per template parameter (see recipientSampleFile).",
    )
    attachments: list[Upload] | None = strawberry.field(
        default=None,
        description="Files sent with every message, at most 4 MB together; programs and scripts "
        "(.exe, .js, .bat, …) are refused.",
    )


@strawberry.input(description="One transactional email, recorded with sendMethod API.")
class SendEmailInput:
    template_id: strawberry.ID = strawberry.field(description="An APPROVED template.")
    sender_address_id: strawberry.ID
    subject: str = strawberry.field(description="May use the template's {{parameters}}.")
    to: str = strawberry.field(description="The recipient address.")
    params: JSON | None = strawberry.field(
        default=None,
        description='A value for every template parameter, e.g. {"name": "Ann"}; other keys '
        "are ignored.",
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="At most 255 characters. The same key within 24 hours returns the first "
        "message instead of sending again.",
    )

    def to_request(self) -> transactional.EmailRequest:
        """What core's sendEmail and sendEmails take from one input."""
        return transactional.EmailRequest(
            template_id=self.template_id,
            sender_address_id=self.sender_address_id,
            subject=self.subject,
            to=self.to,
            params=self.params,
            idempotency_key=self.idempotency_key,
        )
