"""Sending details: every message of an enterprise, searched the way the user guide (5.6) does.

Built for large tables: the created range also becomes a range of message
ids (ids start with their creation millisecond), so the (enterprise_id, id)
index both narrows and orders the scan; pages are keyset on the id, newest
first, and stay correct while rows are added. Text filters match in ways
an index or that range scan can serve:

- recipient: the exact address, its domain in any case (as normalised when written,
  or all lower case) — served by the (enterprise_id, recipient) index;
- sender, template name, task name: the whole value, any case;
- subject: the beginning of the subject (prefix), any case;
- ids, status, send method: exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.clock import as_utc
from koomsg.core.delivery.models import Message, MessageStatus, SendMethod
from koomsg.core.errors import BadInput
from koomsg.core.ids import id_floor
from koomsg.core.pagination import Page, paginate
from koomsg.core.principal import Principal
from koomsg.core.tasks.addresses import normalised_address, recipient_problem
from koomsg.core.tasks.models import SendingTask

MAX_RANGE = timedelta(days=366)
MAX_TEXT = 1024
# Rows may be written a little after the moment they record as created_at (a bulk
# import stamps one time for all its rows), so the id range is widened by these margins
# and created_at stays the exact condition.
ID_MARGIN_BEFORE = timedelta(minutes=1)
ID_MARGIN_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class DetailFilter:
    created_from: datetime
    created_to: datetime
    template_name: str | None = None
    template_id: str | None = None
    task_name: str | None = None
    task_id: str | None = None
    subject: str | None = None
    sender: str | None = None
    recipient: str | None = None
    status: MessageStatus | None = None
    send_method: SendMethod | None = None


def _text(value: str | None, field: str) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_TEXT:
        raise BadInput(field, f"at most {MAX_TEXT} characters")
    return value.strip()


def _recipient_variants(value: str) -> list[str]:
    variants = {value, value.lower()}
    if recipient_problem(value) is None:
        # As stored: an internationalised domain typed in Unicode matches its A-label.
        variants.add(normalised_address(value))
    return sorted(variants)


def _range(f: DetailFilter) -> tuple[datetime, datetime]:
    start, end = as_utc(f.created_from), as_utc(f.created_to)
    if end < start:
        raise BadInput("createdTo", "createdTo is before createdFrom")
    if end - start > MAX_RANGE:
        raise BadInput("createdTo", f"the created range is at most {MAX_RANGE.days} days")
    return start, end


async def list_details(
    session: AsyncSession,
    *,
    principal: Principal,
    filter: DetailFilter,
    first: int | None = None,
    after: str | None = None,
) -> Page[Message]:
    enterprise_id = principal.require_enterprise()
    start, end = _range(filter)
    stmt = select(Message).where(
        Message.enterprise_id == enterprise_id,
        col(Message.id) >= id_floor("msg", start - ID_MARGIN_BEFORE),
        col(Message.id) < id_floor("msg", end + ID_MARGIN_AFTER),
        col(Message.created_at) >= start,
        col(Message.created_at) <= end,
    )
    if filter.template_id:
        stmt = stmt.where(Message.template_id == filter.template_id.strip())
    if filter.task_id:
        stmt = stmt.where(Message.task_id == filter.task_id.strip())
    if filter.status is not None:
        stmt = stmt.where(Message.status == filter.status)
    if filter.send_method is not None:
        stmt = stmt.where(Message.send_method == filter.send_method)
    if template_name := _text(filter.template_name, "templateName"):
        stmt = stmt.where(func.lower(Message.template_name) == template_name.lower())
    if sender := _text(filter.sender, "sender"):
        stmt = stmt.where(func.lower(Message.sender) == sender.lower())
    if subject := _text(filter.subject, "subject"):
        stmt = stmt.where(func.lower(Message.subject).startswith(subject.lower(), autoescape=True))
    if recipient := _text(filter.recipient, "recipient"):
        stmt = stmt.where(col(Message.recipient).in_(_recipient_variants(recipient)))
    if task_name := _text(filter.task_name, "taskName"):
        tasks = select(SendingTask.id).where(
            SendingTask.enterprise_id == enterprise_id,
            func.lower(SendingTask.name) == task_name.lower(),
        )
        stmt = stmt.where(col(Message.task_id).in_(tasks.scalar_subquery()))
    return await paginate(session, stmt, col(Message.id), first=first, after=after)
