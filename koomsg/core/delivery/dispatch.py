"""Dispatching: claiming due TO_SEND rows with a token and enqueueing them in batches of ids.

A row is claimed by moving its ``dispatch_after`` forward and stamping the
dispatch token; a batch the broker loses is dispatched again once that time
passes.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.config import Settings
from koomsg.core.clock import utcnow
from koomsg.core.delivery.context import DeliveryContext
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.tasks.models import SendingTask, TaskStatus
from koomsg.core.tenancy.suspension import not_suspended

MESSAGE = Message.__table__  # type: ignore[attr-defined]
Enqueue = Callable[[str, list[str]], None]


async def dispatch_due(
    context: DeliveryContext, *, enqueue: Enqueue, now: datetime | None = None, limit: int = 5000
) -> int:
    """Enqueue due rows in batches; returns how many rows were dispatched."""
    now = now or utcnow()
    settings = context.settings
    token = secrets.token_hex(8)
    claimed: list[Any] = []
    async with context.db.transaction() as session:
        postgres = session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
        sending = (
            await session.execute(
                select(col(SendingTask.id))
                .where(col(SendingTask.status) == TaskStatus.SENDING)
                .order_by(col(SendingTask.started_at))
                .limit(1000)
            )
        ).scalars()
        # API messages (no task), then each SENDING task: a task's rows are due from
        # their insert on, and its status alone decides whether they may go.
        for task_id in [None, *sending]:
            if len(claimed) >= limit:
                break
            claimed += await _claim_due(
                session, task_id, now, token, limit - len(claimed), settings, postgres
            )
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    # A batch shares one content (delivery/content.py): API messages of two revisions of a
    # template go in separate batches.
    for message_id, task_id, template_id, revision, address_id in claimed:
        groups[(task_id, template_id, revision, address_id)].append(message_id)
    for ids in groups.values():
        ids.sort()
        for start in range(0, len(ids), settings.batch_size):
            enqueue(token, ids[start : start + settings.batch_size])
    return len(claimed)


async def _claim_due(
    session: AsyncSession,
    task_id: str | None,
    now: datetime,
    token: str,
    limit: int,
    settings: Settings,
    postgres: bool,
) -> list[Any]:
    owner = MESSAGE.c.task_id.is_(None) if task_id is None else MESSAGE.c.task_id == task_id
    due = (
        select(MESSAGE.c.id)
        .where(
            owner,
            MESSAGE.c.status == MessageStatus.TO_SEND,
            MESSAGE.c.dispatch_after <= now,
            not_suspended(MESSAGE.c.enterprise_id),
        )
        .order_by(MESSAGE.c.dispatch_after)
        .limit(limit)
    )
    if postgres:
        due = due.with_for_update(skip_locked=True)
    rows = await session.execute(
        update(MESSAGE)
        # Re-checked under the row lock, so two dispatchers never both take a row.
        .where(MESSAGE.c.id.in_(due.scalar_subquery()), MESSAGE.c.dispatch_after <= now)
        .values(
            dispatch_after=now + timedelta(seconds=settings.redispatch_seconds),
            lease_token=token,
        )
        .returning(
            MESSAGE.c.id,
            MESSAGE.c.task_id,
            MESSAGE.c.template_id,
            MESSAGE.c.template_revision,
            MESSAGE.c.sender_address_id,
        )
    )
    return list(rows.all())
