"""Sweeping what a crash left: expired leases go back to TO_SEND, finished tasks complete.

A lease is renewed by its worker's heartbeat while the worker runs, so one that
ran out means the worker stopped: ``sweep`` takes only those rows. A restarted
embedded server need not wait for that: ``release_dead_predecessors`` frees at
once the rows its dead predecessor held (and what that process's in-memory
broker lost). A row released ``KOOMSG_MAX_CLAIMS`` times without an outcome is
a message that stops its worker every time (a poison message): it ends FAILED.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, literal, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.clock import utcnow
from koomsg.core.delivery.context import DeliveryContext
from koomsg.core.delivery.lease import owner_is_gone, process_owner
from koomsg.core.delivery.models import STOPPED_REASON, Message, MessageStatus
from koomsg.core.delivery.service import complete_task_if_done
from koomsg.core.tasks.models import SendingTask, TaskStatus
from koomsg.metrics import MESSAGES
from koomsg.plugins.manager import emit_events
from koomsg.plugins.types import MessageEvent

MESSAGE = Message.__table__  # type: ignore[attr-defined]


async def sweep(context: DeliveryContext, *, now: datetime | None = None) -> dict[str, int]:
    """Recover from crashes: expired leases go back to TO_SEND; finished tasks complete."""
    now = now or utcnow()
    expired = (MESSAGE.c.status == MessageStatus.SENDING, MESSAGE.c.lease_until < now)
    async with context.db.transaction() as session:
        released, failed = await _release(session, context, expired, now)
        completed = await _complete_sending_tasks(session, now)
    _announce_failed(context, failed, now)
    return {"released": released, "failed": len(failed), "completed": completed}


async def release_dead_predecessors(
    context: DeliveryContext, *, now: datetime | None = None
) -> dict[str, int]:
    """At start-up of the embedded default: release at once the rows that a process of
    this host which no longer runs held, instead of waiting for their leases to run out,
    and re-dispatch the rows its in-memory broker still had queued (they are gone)."""
    now = now or utcnow()
    me = process_owner()
    async with context.db.transaction() as session:
        owners = (
            await session.execute(
                select(MESSAGE.c.lease_owner)
                .where(
                    MESSAGE.c.status == MessageStatus.SENDING, MESSAGE.c.lease_owner.is_not(None)
                )
                .distinct()
            )
        ).scalars()
        gone = [owner for owner in owners if owner_is_gone(owner, me=me)]
        failed: list[Any]
        released, failed = 0, []
        if gone:
            held = (MESSAGE.c.status == MessageStatus.SENDING, MESSAGE.c.lease_owner.in_(gone))
            released, failed = await _release(session, context, held, now)
        # Queued in the dead process's in-memory broker: claimable as soon as dispatched again.
        requeued = (
            await session.execute(
                update(MESSAGE)
                .where(
                    MESSAGE.c.status == MessageStatus.TO_SEND,
                    MESSAGE.c.lease_token.is_not(None),
                    MESSAGE.c.dispatch_after > now,
                )
                .values(dispatch_after=now, lease_token=None)
            )
        ).rowcount  # type: ignore[attr-defined]
        completed = await _complete_sending_tasks(session, now)
    _announce_failed(context, failed, now)
    return {
        "released": released,
        "failed": len(failed),
        "requeued": int(requeued or 0),
        "completed": completed,
    }


async def _release(
    session: AsyncSession, context: DeliveryContext, where: tuple[Any, ...], now: datetime
) -> tuple[int, list[Any]]:
    """Rows matching ``where`` whose worker stopped: FAILED once claimed too often (returned
    as rows for the events), otherwise back to TO_SEND, due at once."""
    unleased: dict[str, Any] = {
        "lease_until": None,
        "lease_token": None,
        "lease_owner": None,
        "changed_at": now,
    }
    reason = literal(STOPPED_REASON[0]) + cast(MESSAGE.c.claims, String) + STOPPED_REASON[1]
    failed = list(
        (
            await session.execute(
                update(MESSAGE)
                .where(*where, MESSAGE.c.claims >= context.settings.max_claims)
                .values(
                    status=MessageStatus.FAILED, failure_reason=reason, finished_at=now, **unleased
                )
                .returning(
                    MESSAGE.c.id,
                    MESSAGE.c.enterprise_id,
                    MESSAGE.c.task_id,
                    MESSAGE.c.failure_reason,
                )
            )
        ).all()
    )
    released = (
        await session.execute(
            update(MESSAGE)
            .where(*where)
            .values(status=MessageStatus.TO_SEND, dispatch_after=now, **unleased)
        )
    ).rowcount  # type: ignore[attr-defined]
    return int(released or 0), failed


async def _complete_sending_tasks(session: AsyncSession, now: datetime) -> int:
    sending = (
        (
            await session.execute(
                select(col(SendingTask.id)).where(col(SendingTask.status) == TaskStatus.SENDING)
            )  # type: ignore[arg-type]
        )
        .scalars()
        .all()
    )
    completed = 0
    for task_id in sending:
        completed += int(await complete_task_if_done(session, task_id=task_id, now=now))
    return completed


def _announce_failed(context: DeliveryContext, failed: list[Any], now: datetime) -> None:
    if not failed:
        return
    MESSAGES.labels(str(MessageStatus.FAILED)).inc(len(failed))
    emit_events(
        context.plugins,
        [
            MessageEvent(
                kind="status",
                enterprise_id=enterprise_id,
                message_id=message_id,
                task_id=task_id,
                status=str(MessageStatus.FAILED),
                occurred_at=now,
                detail={"reason": reason},
            )
            for message_id, enterprise_id, task_id, reason in failed
        ],
    )
