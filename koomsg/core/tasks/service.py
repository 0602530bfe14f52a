"""Sending tasks: create (validated in full before anything is written), cancel, search.

A task snapshots its template and sender. Recipients typed by hand become
message rows at once; a recipient file is saved and inspected here, then
imported by the recipients area (task PREPARING until then).

Cancelling deletes the task's unsent (TO_SEND) messages rather than marking
them REJECTED: they were never attempted, so they must not count as sends
(rejected or otherwise) in statistics. A canceled task keeps its row.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.addresses.models import SenderAddress
from koomsg.core.clock import as_utc
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.delivery.service import start_task
from koomsg.core.domains.models import DomainStatus, SenderDomain
from koomsg.core.errors import BadInput, Conflict, PreconditionFailed
from koomsg.core.ids import new_id
from koomsg.core.notices import changed
from koomsg.core.pagination import Page, paginate
from koomsg.core.principal import Principal
from koomsg.core.recipients.models import Suppression
from koomsg.core.recipients.service import fold
from koomsg.core.recipients.writer import write_messages
from koomsg.core.tasks.addresses import normalise_recipient
from koomsg.core.tasks.attachments import UploadLike, read_attachments
from koomsg.core.tasks.models import (
    UNFINISHED_TASK_STATUSES,
    SendingTask,
    SendingType,
    TaskAttachment,
    TaskStatus,
)
from koomsg.core.tasks.uploads import UploadStore
from koomsg.core.templates.params import validate_subject
from koomsg.core.templates.revisions import SendableTemplate
from koomsg.core.templates.service import get_sendable_template
from koomsg.core.tenancy.ownership import owned

log = logging.getLogger(__name__)

MAX_NAME = 128
MAX_SUBJECT = 256
MAX_MANUAL_RECIPIENTS = 10  # user guide 5.5
MAX_SCHEDULE_AHEAD = timedelta(days=90)
CANCELABLE = (TaskStatus.SCHEDULED, TaskStatus.PREPARING)
DELETE_CHUNK = 5000


@dataclass(frozen=True)
class TaskDraft:
    name: str
    subject: str
    template_id: str
    sender_address_id: str
    sending_type: SendingType
    scheduled_at: datetime | None = None
    recipients: Sequence[str] | None = None
    recipient_file: UploadLike | None = None
    attachments: Sequence[UploadLike] = ()


@dataclass(frozen=True)
class TaskFilter:
    name: str | None = None
    template_name: str | None = None
    template_id: str | None = None
    status: TaskStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True)
class TaskCounts:
    total: int = 0
    to_send: int = 0
    delivered: int = 0
    failed: int = 0
    rejected: int = 0


# ------------------------------------------------------------------ validation
def clean_task_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise BadInput("name", f"a task name has 1 to {MAX_NAME} characters")
    return name


def clean_subject(subject: str, params: Sequence[str]) -> str:
    """1 to 256 characters, one line, no encoded words, only the template's parameters."""
    from koomsg.core.delivery.mime import check_header_value

    if not subject.strip() or len(subject) > MAX_SUBJECT:
        raise BadInput("subject", f"a subject has 1 to {MAX_SUBJECT} characters")
    validate_subject(subject, params)
    check_header_value(subject, field="subject")
    return subject.strip()


def check_schedule(
    sending_type: SendingType, scheduled_at: datetime | None, now: datetime
) -> datetime | None:
    if sending_type == SendingType.NOW:
        if scheduled_at is not None:
            raise BadInput("scheduledAt", "scheduledAt is only for SCHEDULED tasks")
        return None
    if scheduled_at is None:
        raise BadInput("scheduledAt", "a SCHEDULED task needs scheduledAt")
    when = as_utc(scheduled_at)
    if when <= now:
        raise BadInput("scheduledAt", "scheduledAt must be in the future")
    if when > now + MAX_SCHEDULE_AHEAD:
        raise BadInput(
            "scheduledAt", f"scheduledAt is at most {MAX_SCHEDULE_AHEAD.days} days ahead"
        )
    return when


def manual_recipients(recipients: Sequence[str], params: Sequence[str]) -> list[str]:
    """Valid, normalised, duplicates (any case) folded; only for templates without parameters."""
    if params:
        raise BadInput(
            "recipients",
            f"this template has parameters ({', '.join(params)}): recipients of such a template "
            "can only be given in a recipient file, with a column per parameter",
        )
    if not recipients:
        raise BadInput("recipients", "give at least one recipient")
    if len(recipients) > MAX_MANUAL_RECIPIENTS:
        raise BadInput(
            "recipients",
            f"at most {MAX_MANUAL_RECIPIENTS} recipients can be typed by hand: upload a file "
            "for more",
        )
    seen: dict[str, str] = {}
    for value in recipients:
        address = normalise_recipient(value, field="recipients")
        seen.setdefault(fold(address), address)
    return list(seen.values())


async def sendable_sender(
    session: AsyncSession, *, principal: Principal, address_id: str
) -> tuple[SenderAddress, SenderDomain]:
    """The caller's sender address and its domain, which must have passed verification."""
    address = await owned(
        session,
        SenderAddress,
        address_id,
        principal=principal,
        message="no such sender address",
        field="senderAddressId",
    )
    domain = await session.get(SenderDomain, address.domain_id)
    if domain is None or domain.status != DomainStatus.VERIFICATION_PASSED:
        name = domain.name if domain else "?"
        raise PreconditionFailed(
            f"the sender domain {name} has not passed verification: verify it before sending",
            field="senderAddressId",
        )
    return address, domain


def _importer() -> object | None:
    # The recipients area owns file parsing; until it is installed, files are kept unparsed.
    try:
        from koomsg.core.recipients import importer
    except ImportError:
        return None
    return importer


# ------------------------------------------------------------------ messages
async def suppression_reasons(
    session: AsyncSession, *, enterprise_id: str, addresses: Sequence[str]
) -> dict[str, str]:
    """Folded address → why it is suppressed, for those of ``addresses`` that are."""
    folded = sorted({fold(a) for a in addresses})
    found: dict[str, str] = {}
    for start in range(0, len(folded), 500):
        stmt = select(Suppression.address, Suppression.reason).where(
            Suppression.enterprise_id == enterprise_id,
            col(Suppression.address).in_(folded[start : start + 500]),
        )
        found.update({address: str(reason) for address, reason in (await session.exec(stmt)).all()})
    return found


def suppressed_reason(reason: str) -> str:
    # Worded as the recipients area's bulk writer words it for task messages.
    return f"recipient is on the suppression list ({reason.lower()})"


# ------------------------------------------------------------------ create
def _snapshot(
    task_id: str,
    enterprise_id: str,
    draft: TaskDraft,
    name: str,
    subject: str,
    template: SendableTemplate,
    sender: tuple[SenderAddress, SenderDomain],
    scheduled_at: datetime | None,
    now: datetime,
) -> SendingTask:
    address, domain = sender
    return SendingTask(
        id=task_id,
        enterprise_id=enterprise_id,
        name=name,
        subject=subject,
        template_id=template.id,
        template_name=template.name,
        template_revision=template.revision,
        body_type=str(template.body_type),
        body=template.body,
        params=list(template.params),
        support_unsubscribe=template.support_unsubscribe,
        sender_address_id=address.id,
        sender_domain_id=domain.id,
        sender_address=f"{address.prefix}@{domain.name}",
        sender_alias=address.alias,
        sending_type=draft.sending_type,
        scheduled_at=scheduled_at,
        created_at=now,
    )


async def create_task(
    session: AsyncSession,
    *,
    principal: Principal,
    draft: TaskDraft,
    store: UploadStore,
    now: datetime,
) -> SendingTask:
    """Validate everything, then write the task, its attachments and (typed recipients) messages.

    A recipient file is saved through ``store`` (which removes it if the
    transaction fails) and inspected before the task row is written; the
    caller asks for its import after commit (``request_import``).
    """
    enterprise_id = principal.require_enterprise()
    name = clean_task_name(draft.name)
    template = await get_sendable_template(
        session, principal=principal, template_id=draft.template_id
    )
    subject = clean_subject(draft.subject, template.params)
    sender = await sendable_sender(session, principal=principal, address_id=draft.sender_address_id)
    scheduled_at = check_schedule(draft.sending_type, draft.scheduled_at, now)
    if (draft.recipients is None) == (draft.recipient_file is None):
        raise BadInput(
            "recipients", "give either recipients (typed by hand) or a recipientFile, not both"
        )
    recipients = (
        manual_recipients(draft.recipients, template.params)
        if draft.recipients is not None
        else None
    )
    attachments = await read_attachments(list(draft.attachments))
    task_id = new_id("tsk")
    task = _snapshot(
        task_id, enterprise_id, draft, name, subject, template, sender, scheduled_at, now
    )
    if draft.recipient_file is not None:
        path, kind = await store.save_recipient_file(draft.recipient_file, task_id=task_id)
        importer = _importer()
        if importer is not None:
            await importer.inspect_file(  # type: ignore[attr-defined]
                path, kind=kind, params=list(template.params), enterprise_id=enterprise_id
            )
        task.recipient_file, task.recipient_file_kind = str(path), kind
        task.status = TaskStatus.PREPARING
    session.add(task)
    await session.flush()
    for item in attachments:
        session.add(
            TaskAttachment(
                task_id=task_id,
                filename=item.filename,
                content_type=item.content_type,
                size=len(item.data),
                data=item.data,
            )
        )
    if recipients is not None:
        await write_messages(session, task=task, recipients=[(r, {}) for r in recipients], now=now)
        if draft.sending_type == SendingType.NOW:
            await start_task(session, task=task, now=now)
            await session.refresh(task)
        else:
            task.status = TaskStatus.SCHEDULED
            session.add(task)
    await session.flush()
    return task


def request_import(task: SendingTask, *, enqueue: Callable[[str], None] | None) -> None:
    """After commit: ask a worker to import a PREPARING task's file through ``enqueue``;
    with none (no worker in this process) the import sweeper finds the task."""
    if task.status != TaskStatus.PREPARING:
        return
    if enqueue is None:
        log.info("task %s waits for the import sweeper", task.id)
        return
    enqueue(task.id)


# ------------------------------------------------------------------ read, cancel
async def get_task(
    session: AsyncSession, *, principal: Principal, task_id: str, field: str = "id"
) -> SendingTask:
    return await owned(
        session,
        SendingTask,
        task_id,
        principal=principal,
        message="no such sending task",
        field=field,
    )


async def cancel_task(
    session: AsyncSession, *, principal: Principal, task_id: str, now: datetime
) -> tuple[SendingTask, str | None]:
    """Cancel a SCHEDULED or PREPARING task; returns it and the recipient file to remove
    after commit.

    The conditional UPDATE races fairly with the scheduler's claim: whichever
    commits first wins, the other changes nothing.
    """
    task = await get_task(session, principal=principal, task_id=task_id)
    leftover = task.recipient_file
    result = await session.execute(
        update(SendingTask)
        .where(col(SendingTask.id) == task.id, col(SendingTask.status).in_(CANCELABLE))
        .values(
            status=TaskStatus.CANCELED,
            finished_at=now,
            recipient_file=None,
            import_claimed_until=None,
        )
    )
    await session.refresh(task)
    if not result.rowcount:  # type: ignore[attr-defined]
        raise PreconditionFailed(
            f"only scheduled or preparing tasks can be canceled; this one is {task.status}",
            field="id",
        )
    await _delete_unsent(session, task.id)
    await session.execute(delete(TaskAttachment).where(col(TaskAttachment.task_id) == task.id))
    changed(session, task.id)
    return task, leftover


async def _delete_unsent(session: AsyncSession, task_id: str) -> None:
    # Chunked so one huge task never builds a single enormous statement's worth of locks at once.
    while True:
        chunk = (
            select(Message.id)
            .where(Message.task_id == task_id, Message.status == MessageStatus.TO_SEND)
            .limit(DELETE_CHUNK)
        )
        result = await session.execute(
            delete(Message).where(col(Message.id).in_(chunk.scalar_subquery()))
        )
        if result.rowcount < DELETE_CHUNK:  # type: ignore[attr-defined]
            return


async def list_tasks(
    session: AsyncSession,
    *,
    principal: Principal,
    filter: TaskFilter | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Page[SendingTask]:
    """Newest first. Names match case-insensitively anywhere in the name; ids match exactly."""
    f = filter or TaskFilter()
    stmt = select(SendingTask).where(SendingTask.enterprise_id == principal.require_enterprise())
    if f.name and f.name.strip():
        stmt = stmt.where(
            func.lower(SendingTask.name).contains(f.name.strip().lower(), autoescape=True)
        )
    if f.template_name and f.template_name.strip():
        needle = f.template_name.strip().lower()
        stmt = stmt.where(func.lower(SendingTask.template_name).contains(needle, autoescape=True))
    if f.template_id:
        stmt = stmt.where(SendingTask.template_id == f.template_id.strip())
    if f.status is not None:
        stmt = stmt.where(SendingTask.status == f.status)
    if f.created_from is not None:
        stmt = stmt.where(col(SendingTask.created_at) >= f.created_from)
    if f.created_to is not None:
        stmt = stmt.where(col(SendingTask.created_at) <= f.created_to)
    return await paginate(session, stmt, col(SendingTask.id), first=first, after=after)


async def tasks_by_ids(session: AsyncSession, task_ids: Sequence[str]) -> dict[str, SendingTask]:
    stmt = select(SendingTask).where(col(SendingTask.id).in_(list(task_ids)))
    return {task.id: task for task in (await session.exec(stmt)).all()}


async def counts_for(session: AsyncSession, task_ids: Sequence[str]) -> dict[str, TaskCounts]:
    """One GROUP BY over message(task_id, status) for all the tasks."""
    by_task: dict[str, dict[str, int]] = defaultdict(dict)
    stmt = (
        select(Message.task_id, Message.status, func.count())
        .where(col(Message.task_id).in_(list(task_ids)))
        .group_by(col(Message.task_id), col(Message.status))
    )
    for task_id, status, count in (await session.exec(stmt)).all():
        by_task[str(task_id)][str(status)] = int(count)
    result = {}
    for task_id in task_ids:
        c = by_task.get(task_id, {})
        result[task_id] = TaskCounts(
            total=sum(c.values()),
            to_send=c.get(MessageStatus.TO_SEND, 0) + c.get(MessageStatus.SENDING, 0),
            delivered=c.get(MessageStatus.DELIVERED, 0),
            failed=c.get(MessageStatus.FAILED, 0),
            rejected=c.get(MessageStatus.REJECTED, 0),
        )
    return result


# ------------------------------------------------------------------ deletion guards
# Listed in koomsg.core.flows, which runs them before a domain or template is deleted.
async def _unfinished_task(
    session: AsyncSession, *conditions: ColumnElement[bool]
) -> SendingTask | None:
    stmt = select(SendingTask).where(
        *conditions, col(SendingTask.status).in_(UNFINISHED_TASK_STATUSES)
    )  # type: ignore[arg-type]
    return (await session.exec(stmt.order_by(col(SendingTask.id)).limit(1))).first()


async def guard_domain(session: AsyncSession, domain: SenderDomain) -> None:
    """A domain stays while a task that has not finished sends from it."""
    task = await _unfinished_task(session, col(SendingTask.sender_domain_id) == domain.id)
    if task is not None:
        raise Conflict(
            f"the sending task {task.name!r} ({task.id}, {task.status}) sends from {domain.name}: "
            "cancel it or wait until it finishes",
            field="id",
        )


async def guard_template(session: AsyncSession, template_id: str) -> None:
    task = await _unfinished_task(session, col(SendingTask.template_id) == template_id)
    if task is not None:
        raise Conflict(
            f"the sending task {task.name!r} ({task.id}, {task.status}) uses this template: "
            "cancel it or wait until it finishes",
            field="id",
        )
