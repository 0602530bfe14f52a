"""Recording: each transport answer becomes an outcome, written in groups as they arrive.

``write_outcomes`` writes one group (``recorder.OutcomeWriter`` forms them
over a few milliseconds, from every batch of the process) with the hard
bounces it suppresses, then counts the outcomes and tells observers. ``finish_batch``
settles the batch's billing reservation and completes finished tasks once all
of its outcomes are written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update

from koomsg.core.clock import utcnow
from koomsg.core.delivery.bounces import is_hard_bounce
from koomsg.core.delivery.context import DeliveryContext
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.delivery.service import complete_task_if_done
from koomsg.core.recipients.models import SuppressionReason
from koomsg.core.recipients.service import suppress
from koomsg.metrics import MESSAGES
from koomsg.plugins.manager import call_first, emit_events
from koomsg.plugins.types import (
    BillingReservation,
    DeliveryResult,
    DeliveryStatus,
    EnterpriseInfo,
    MessageEvent,
    MessageOutcome,
)

MESSAGE = Message.__table__  # type: ignore[attr-defined]


@dataclass
class Outcome:
    message: Message
    status: MessageStatus
    reason: str | None = None
    reply: str | None = None
    received_at: datetime | None = None
    retry_at: datetime | None = None
    handed_to_transport: bool = False
    hard_bounce: bool = False


def retry_delay(settings: Any, attempts: int) -> float:
    """Exponential backoff from the minimum to the maximum delay (Postfix-like defaults)."""
    return float(
        min(settings.retry_max_seconds, settings.retry_min_seconds * 2 ** max(0, attempts - 1))
    )


def outcome_of(settings: Any, message: Message, result: DeliveryResult) -> Outcome:
    now = utcnow()
    if result.status is DeliveryStatus.ACCEPTED:
        return Outcome(
            message,
            MessageStatus.DELIVERED,
            None,
            result.reply,
            result.accepted_at or now,
            handed_to_transport=True,
        )
    if result.status is DeliveryStatus.PERMANENT_FAILURE:
        return Outcome(
            message,
            MessageStatus.FAILED,
            result.reply or "permanent failure",
            result.reply,
            handed_to_transport=True,
            hard_bounce=is_hard_bounce(result),
        )
    retry_at = now + timedelta(seconds=retry_delay(settings, message.attempts))
    age = (retry_at - message.created_at).total_seconds()
    if age > settings.retry_max_age_seconds:
        reason = f"gave up after {message.attempts} attempts: {result.reply or 'temporary failure'}"
        return Outcome(
            message, MessageStatus.FAILED, reason, result.reply, handed_to_transport=True
        )
    return Outcome(
        message,
        MessageStatus.TO_SEND,
        None,
        result.reply,
        retry_at=retry_at,
        handed_to_transport=True,
    )


@dataclass(frozen=True)
class Recorded:
    """An outcome to write, with the batch it belongs to (its dispatch token)."""

    token: str
    enterprise_id: str
    outcome: Outcome


async def write_outcomes(context: DeliveryContext, entries: list[Recorded]) -> None:
    """One group of outcomes (of any batches) in one write, with the hard bounces they
    suppress, then counted and told to observers. Only rows still held by their batch's
    token change."""
    if not entries:
        return
    now = utcnow()
    rows = [
        {
            "b_id": e.outcome.message.id,
            "b_token": e.token,
            "b_status": e.outcome.status,
            "b_reason": (e.outcome.reason or None) and e.outcome.reason[:1024],
            "b_reply": (e.outcome.reply or None) and e.outcome.reply[:1024],
            "b_received": e.outcome.received_at,
            "b_finished": None if e.outcome.status is MessageStatus.TO_SEND else now,
            "b_dispatch": e.outcome.retry_at,
        }
        for e in entries
    ]
    statement = (
        update(MESSAGE)
        .where(
            MESSAGE.c.id == bindparam("b_id"),
            MESSAGE.c.status == MessageStatus.SENDING,
            MESSAGE.c.lease_token == bindparam("b_token"),
        )
        .values(
            status=bindparam("b_status"),
            failure_reason=bindparam("b_reason"),
            last_reply=bindparam("b_reply"),
            received_at=bindparam("b_received"),
            finished_at=bindparam("b_finished"),
            dispatch_after=bindparam("b_dispatch"),
            lease_until=None,
            lease_token=None,
            lease_owner=None,
            # An outcome: the row is no poison message, whatever happened before.
            claims=0,
            changed_at=now,
        )
    )
    async with context.db.transaction() as session:
        await session.execute(statement, rows)
        for e in entries:
            if e.outcome.hard_bounce:
                await suppress(
                    session,
                    enterprise_id=e.enterprise_id,
                    address=e.outcome.message.recipient,
                    reason=SuppressionReason.HARD_BOUNCE,
                    detail=e.outcome.reply,
                    message_id=e.outcome.message.id,
                )
    announce(context, entries, now)


def announce(context: DeliveryContext, entries: list[Recorded], now: datetime) -> None:
    """Count written outcomes and tell ``koomsg_message_event`` observers."""
    for status, count in Counter(str(e.outcome.status) for e in entries).items():
        MESSAGES.labels(status).inc(count)
    emit_events(
        context.plugins,
        [
            MessageEvent(
                kind="status",
                enterprise_id=e.enterprise_id,
                message_id=e.outcome.message.id,
                task_id=e.outcome.message.task_id,
                status=str(e.outcome.status),
                occurred_at=now,
                detail={"reason": e.outcome.reason} if e.outcome.reason else {},
            )
            for e in entries
        ],
    )


async def finish_batch(
    context: DeliveryContext,
    outcomes: list[Outcome],
    enterprise: EnterpriseInfo,
    reservation: BillingReservation,
) -> None:
    """Once every outcome of a batch is written: settle its billing reservation and complete
    its task when nothing of it is pending, in one transaction.

    Settling charges exactly the messages handed to a transport, once (the ledger is
    unique by message), so a batch that dies before this leaves the billing sweeper
    to settle from the written outcomes, with the same result.
    """
    now = utcnow()
    async with context.db.transaction() as session:
        await call_first(
            context.plugins,
            "koomsg_billing_settle",
            enterprise=enterprise,
            reservation=reservation,
            outcomes=[
                MessageOutcome(o.message.id, o.handed_to_transport, str(o.status)) for o in outcomes
            ],
            context=session,
        )
        for task_id in {o.message.task_id for o in outcomes if o.message.task_id}:
            await complete_task_if_done(session, task_id=task_id, now=now)
