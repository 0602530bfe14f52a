"""Recording opens, clicks and unsubscribes, each once per message as "unique".

Repeats raise the counters; the first one sets the timestamp that reports
count. An unsubscribe puts the address on the enterprise's suppression list.
An expired open or click token records nothing (``Tracked.expired``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.config import Settings
from koomsg.core.crypto import BadToken
from koomsg.core.delivery.models import Message
from koomsg.core.errors import NotFound
from koomsg.core.recipients.models import SuppressionReason
from koomsg.core.recipients.service import suppress
from koomsg.core.tracking.links import CLICK, OPEN, UNSUBSCRIBE, is_expired, read_token

MESSAGE = Message.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Tracked:
    message: Message
    first_time: bool
    destination: str | None = None
    expired: bool = False


async def _message(session: AsyncSession, message_id: str) -> Message:
    message = await session.get(Message, message_id)
    if message is None:
        raise NotFound("no such message")
    return message


def _payload(settings: Settings, purpose: str, token: str) -> dict[str, str]:
    try:
        return read_token(settings, purpose, token)
    except BadToken:
        raise NotFound("this link is not valid") from None


async def record_open(
    session: AsyncSession, *, settings: Settings, token: str, now: datetime
) -> Tracked:
    payload = _payload(settings, OPEN, token)
    message = await _message(session, payload["m"])
    if is_expired(settings, payload, sent_at=message.created_at, now=now):
        return Tracked(message, False, expired=True)
    first = message.first_opened_at is None
    await session.execute(
        update(MESSAGE)
        .where(MESSAGE.c.id == message.id)
        .values(
            changed_at=now,
            open_count=MESSAGE.c.open_count + 1,
            first_opened_at=func.coalesce(MESSAGE.c.first_opened_at, now),
        )
    )
    return Tracked(message, first)


async def record_click(
    session: AsyncSession, *, settings: Settings, token: str, now: datetime
) -> Tracked:
    payload = _payload(settings, CLICK, token)
    message = await _message(session, payload["m"])
    if is_expired(settings, payload, sent_at=message.created_at, now=now):
        return Tracked(message, False, payload["u"], expired=True)
    first = message.first_clicked_at is None
    await session.execute(
        update(MESSAGE)
        .where(MESSAGE.c.id == message.id)
        .values(
            changed_at=now,
            click_count=MESSAGE.c.click_count + 1,
            first_clicked_at=func.coalesce(MESSAGE.c.first_clicked_at, now),
            # A click proves the message was opened, even with images blocked.
            first_opened_at=func.coalesce(MESSAGE.c.first_opened_at, now),
        )
    )
    return Tracked(message, first, payload["u"])


async def check_unsubscribe(session: AsyncSession, *, settings: Settings, token: str) -> Message:
    return await _message(session, _payload(settings, UNSUBSCRIBE, token)["m"])


async def record_unsubscribe(
    session: AsyncSession, *, settings: Settings, token: str, now: datetime
) -> Tracked:
    message = await check_unsubscribe(session, settings=settings, token=token)
    first = message.unsubscribed_at is None
    if first:
        await session.execute(
            update(MESSAGE)
            .where(MESSAGE.c.id == message.id)
            .values(unsubscribed_at=now, changed_at=now)
        )
    await suppress(
        session,
        enterprise_id=message.enterprise_id,
        address=message.recipient,
        reason=SuppressionReason.UNSUBSCRIBED,
        detail="one-click or page unsubscribe",
        message_id=message.id,
    )
    return Tracked(message, first)
