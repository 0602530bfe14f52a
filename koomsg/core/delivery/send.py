"""Sending a batch's messages: build, take a window slot, check the lease, hand over, record.

Every message is built (``build.py``, in helper processes for big batches),
then waits for a slot of the process's send window; with the slot it checks
that the batch still holds its row (``Lease.holds``: a row another worker took
is given up, never sent twice) and goes to the transport. Its outcome goes to
the process's ``OutcomeWriter``, which frees the slot once it is written.
"""

from __future__ import annotations

import asyncio
import logging

from koomsg.core.delivery.build import (
    BUILD_CHUNK,
    BUILD_POOL_MIN_BATCH,
    INLINE_CHUNK,
    Built,
    build_envelopes,
    build_pool,
)
from koomsg.core.delivery.content import Content
from koomsg.core.delivery.context import DeliveryContext
from koomsg.core.delivery.lease import Lease
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.delivery.record import Outcome, outcome_of
from koomsg.core.delivery.recorder import BatchOutcomes, outcome_writer
from koomsg.plugins.types import DeliveryResult

log = logging.getLogger(__name__)


async def send_all(
    context: DeliveryContext,
    content: Content,
    messages: list[Message],
    lease: Lease,
    outcomes: BatchOutcomes,
) -> None:
    """Send ``messages``; each outcome goes to the outcome writer as it arrives."""
    settings = context.settings
    slots = context.window()
    writer = outcome_writer(context)

    async def one(message: Message, built: Built) -> None:
        if isinstance(built, str):
            log.error("message %s could not be built: %s", message.id, built)
            reason = f"message could not be built: {built}"
            writer.add(outcomes, Outcome(message, MessageStatus.FAILED, reason))
            return
        await slots.acquire()
        try:
            if not await lease.holds(message.id):
                slots.release()  # another worker has the row now: it is theirs to send
                return
            try:
                result = await context.transport.send(built)
            except Exception as exc:
                result = DeliveryResult.temporary(f"transport error: {type(exc).__name__}: {exc}")
        except BaseException:
            slots.release()  # cancelled or dying: no outcome to wait for
            raise
        writer.add(outcomes, outcome_of(settings, message, result), slot=True)

    pool = build_pool(settings) if len(messages) >= BUILD_POOL_MIN_BATCH else None
    sending: list[asyncio.Future[None]] = []
    try:
        if pool is not None:

            async def part(chunk: list[Message]) -> None:
                built = await build_envelopes(settings, content, chunk, pool)
                await asyncio.gather(*(one(m, b) for m, b in zip(chunk, built, strict=True)))

            step = BUILD_CHUNK
            sending = [
                asyncio.ensure_future(part(messages[i : i + step]))
                for i in range(0, len(messages), step)
            ]
        else:
            for start in range(0, len(messages), INLINE_CHUNK):
                if start:
                    # Building is CPU-bound: yield between parts so other batches' database
                    # round trips go on. One of them may hold the enterprise's billing lock,
                    # and a loop busy signing a whole batch would keep every batch waiting.
                    await asyncio.sleep(0)
                chunk = messages[start : start + INLINE_CHUNK]
                built = await build_envelopes(settings, content, chunk, None)
                sending.extend(
                    asyncio.ensure_future(one(m, b)) for m, b in zip(chunk, built, strict=True)
                )
        await asyncio.gather(*sending)
    finally:
        # One send failing badly stops the others: none may go out after the batch ended.
        for future in sending:
            future.cancel()
