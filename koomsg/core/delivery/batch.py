"""Delivering one batch: claim its rows, render, check, reserve, send, record.

``deliver_batch`` is the batch actor's body. It claims the rows carrying its
dispatch token (TO_SEND → SENDING with a lease owned by this process), keeps
the lease alive with a heartbeat while it works, drops suppressed recipients,
reserves billing, builds and hands each message to the transport
(``send.py``), writes outcomes as they arrive (``recorder.py``), and settles
billing once all are written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.clock import utcnow
from koomsg.core.delivery.content import Content, build_content, content_key
from koomsg.core.delivery.context import DeliveryContext
from koomsg.core.delivery.lease import Lease, process_owner
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.delivery.record import Outcome, finish_batch
from koomsg.core.delivery.recorder import outcome_writer
from koomsg.core.delivery.send import send_all
from koomsg.core.recipients.service import suppressed_among
from koomsg.core.tenancy.models import Enterprise
from koomsg.core.tenancy.suspension import not_suspended
from koomsg.plugins.manager import call_first
from koomsg.plugins.types import BillingReservation, EnterpriseInfo

log = logging.getLogger(__name__)
MESSAGE = Message.__table__  # type: ignore[attr-defined]


@dataclass
class BatchReport:
    claimed: int = 0
    outcomes: dict[str, MessageStatus] = field(default_factory=dict)


async def deliver_batch(
    context: DeliveryContext, *, token: str, message_ids: Sequence[str]
) -> BatchReport:
    """Send one batch; safe to run twice (the second run claims nothing)."""
    now = utcnow()
    report = BatchReport()
    async with context.db.transaction() as session:
        messages = await _claim(session, context, token, message_ids, now)
    report.claimed = len(messages)
    if not messages:
        return report
    lease = Lease(context, token, [m.id for m in messages])
    lease.start()
    try:
        outcomes, info, reservation = await _deliver(context, lease, messages)
    finally:
        await lease.stop()
    await finish_batch(context, outcomes, info, reservation)
    report.outcomes = {o.message.id: o.status for o in outcomes}
    return report


async def _deliver(
    context: DeliveryContext, lease: Lease, messages: list[Message]
) -> tuple[list[Outcome], EnterpriseInfo, BillingReservation]:
    async with context.db.session() as session:
        content = await _content(context, session, messages[0])
        enterprise = await session.get(Enterprise, content.enterprise_id)
        suppressed = await suppressed_among(
            session, enterprise_id=content.enterprise_id, addresses=[m.recipient for m in messages]
        )
    assert enterprise is not None
    info = EnterpriseInfo(
        id=enterprise.id,
        name=enterprise.name,
        industry_class=str(enterprise.industry_class),
        real_name_verified=enterprise.real_name_verified,
    )
    writer = outcome_writer(context)
    outcomes = writer.open(lease, info.id)
    try:
        sendable: list[Message] = []
        for message in messages:
            if content.refusal:
                writer.add(outcomes, Outcome(message, MessageStatus.REJECTED, content.refusal))
            elif message.recipient.lower() in suppressed:
                reason = "recipient is on the suppression list"
                writer.add(outcomes, Outcome(message, MessageStatus.REJECTED, reason))
            else:
                sendable.append(message)
        reservation = await _reserve(context, info, sendable)
        allowed = reservation.allowed_ids([m.id for m in sendable])
        refusal = reservation.reason or "quota exceeded"
        for message in sendable:
            if message.id not in allowed:
                writer.add(outcomes, Outcome(message, MessageStatus.REJECTED, refusal))
        # Content, suppression and billing can outlast the lease (waiting for the billing
        # lock, say) if the heartbeat stalls: rows taken meanwhile are given up here.
        held = await lease.renew()
        to_send = [m for m in sendable if m.id in allowed and m.id in held]
        await send_all(context, content, to_send, lease, outcomes)
    finally:
        written = await writer.close(outcomes)
    return written, info, reservation


async def _claim(
    session: AsyncSession,
    context: DeliveryContext,
    token: str,
    message_ids: Sequence[str],
    now: datetime,
) -> list[Message]:
    lease_until = now + timedelta(seconds=context.settings.lease_seconds)
    claimed_ids = (
        (
            await session.execute(
                update(MESSAGE)
                .where(
                    MESSAGE.c.id.in_(list(message_ids)),
                    MESSAGE.c.status == MessageStatus.TO_SEND,
                    MESSAGE.c.lease_token == token,
                    # Enqueued before a suspension: left TO_SEND for after resumeEnterprise.
                    not_suspended(MESSAGE.c.enterprise_id),
                )
                .values(
                    status=MessageStatus.SENDING,
                    lease_until=lease_until,
                    lease_owner=process_owner(),
                    attempts=MESSAGE.c.attempts + 1,
                    claims=MESSAGE.c.claims + 1,
                    changed_at=now,
                )
                .returning(MESSAGE.c.id)
            )
        )
        .scalars()
        .all()
    )
    if not claimed_ids:
        return []
    rows = (
        (await session.execute(select(Message).where(col(Message.id).in_(claimed_ids))))
        .scalars()
        .all()
    )  # type: ignore[attr-defined]
    return sorted(rows, key=lambda m: m.id)


async def _content(context: DeliveryContext, session: AsyncSession, message: Message) -> Content:
    key = content_key(message)
    cached = context.content.get(key)
    if cached is None or not cached.fresh:
        cached = await build_content(session, settings=context.settings, message=message)
        context.content.put(key, cached)
    return cached


async def _reserve(
    context: DeliveryContext, enterprise: EnterpriseInfo, messages: list[Message]
) -> BillingReservation:
    if not messages:
        return BillingReservation(allowed=True, allowed_message_ids=[])
    answer = await call_first(
        context.plugins,
        "koomsg_billing_reserve",
        enterprise=enterprise,
        count=len(messages),
        message_ids=[m.id for m in messages],
        context=context,
    )
    # No billing plugin answered: nothing meters this deployment, so all may go.
    return answer if isinstance(answer, BillingReservation) else BillingReservation.allow_all()
