"""A poison message (its worker dies every time it sends it) ends FAILED after
KOOMSG_MAX_CLAIMS claims instead of taking workers down forever; it is never charged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from koomsg.core.billing.models import LedgerEntry
from koomsg.core.billing.sweep import sweep_reservations
from koomsg.core.delivery.batch import deliver_batch
from koomsg.core.delivery.dispatch import dispatch_due
from koomsg.core.delivery.models import MessageStatus
from koomsg.core.delivery.sweep import sweep
from koomsg.core.tasks.models import TaskStatus
from koomsg.runtime import Runtime
from koomsg.testing.delivery import later, make_task, statuses, task_status
from koomsg.testing.plugin import Api, EnterpriseHandle, sendable_setup
from tests.e2e.e2e_support import wait_until

POISON = "poison@example.net"


async def _delivered(runtime: Runtime, task_id: str) -> bool:
    rows = await statuses(runtime, task_id)
    return rows["good@example.net"].status == MessageStatus.DELIVERED


async def _dispatch(runtime: Runtime, now: Any) -> list[tuple[str, list[str]]]:
    batches: list[tuple[str, list[str]]] = []
    await dispatch_due(runtime.delivery, enqueue=lambda t, ids: batches.append((t, ids)), now=now)
    return batches


async def test_a_message_whose_worker_dies_every_time_ends_failed(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = await sendable_setup(api, runtime)
    task = await make_task(runtime, setup, enterprise.id, ["good@example.net", POISON])
    transport = runtime.transport
    send = transport.send
    entered = asyncio.Event()

    async def dying_send(envelope: Any) -> Any:
        if envelope.recipients == [POISON]:
            entered.set()
            await asyncio.Event().wait()  # the worker "dies" here: cancelled, no outcome
        return await send(envelope)

    monkeypatch.setattr(transport, "send", dying_send)
    max_claims = runtime.settings.max_claims
    step = runtime.settings.lease_seconds + 1
    now = later(0)
    for claim in range(1, max_claims + 1):
        batches = await _dispatch(runtime, now)
        assert sum(len(ids) for _, ids in batches) == (2 if claim == 1 else 1)
        entered.clear()
        running = [
            asyncio.create_task(deliver_batch(runtime.delivery, token=t, message_ids=ids))
            for t, ids in batches
        ]
        await asyncio.wait_for(entered.wait(), 30)
        await wait_until(
            lambda: _delivered(runtime, task.id), within=30, what="the good message's outcome"
        )
        for batch in running:
            batch.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        row = (await statuses(runtime, task.id))[POISON]
        assert (row.status, row.claims) == (MessageStatus.SENDING, claim)
        now = later(step * claim)
        result = await sweep(runtime.delivery, now=now)
        assert (result["released"], result["failed"]) == ((1, 0) if claim < max_claims else (0, 1))

    rows = await statuses(runtime, task.id)
    assert rows["good@example.net"].status == MessageStatus.DELIVERED
    poison = rows[POISON]
    assert poison.status == MessageStatus.FAILED
    assert poison.failure_reason == (
        f"could not be sent: the worker stopped {max_claims} times while sending it"
    )
    assert poison.lease_until is None and poison.lease_owner is None
    assert await task_status(runtime, task.id) is TaskStatus.COMPLETED
    assert await _dispatch(runtime, later(step * (max_claims + 2))) == []

    # The reservations the dying batches left are settled: the good message is charged,
    # the poison one (no answer was ever seen) is not.
    assert await sweep_reservations(runtime.delivery, now=later(step * 100)) >= 1
    async with runtime.db.session() as session:
        charged = set((await session.execute(select(LedgerEntry.message_id))).scalars().all())  # type: ignore[call-overload]
    assert charged == {rows["good@example.net"].id}


async def test_an_outcome_resets_the_claim_count(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = await sendable_setup(api, runtime)
    task = await make_task(runtime, setup, enterprise.id, ["later@example.net"])
    transport = runtime.transport
    send = transport.send
    entered = asyncio.Event()
    dying = True

    async def flaky_send(envelope: Any) -> Any:
        if dying:
            entered.set()
            await asyncio.Event().wait()
        return await send(envelope)

    monkeypatch.setattr(transport, "send", flaky_send)
    [(token, ids)] = await _dispatch(runtime, later(0))
    batch = asyncio.create_task(deliver_batch(runtime.delivery, token=token, message_ids=ids))
    await asyncio.wait_for(entered.wait(), 30)
    batch.cancel()
    await asyncio.gather(batch, return_exceptions=True)
    now = later(runtime.settings.lease_seconds + 1)
    assert (await sweep(runtime.delivery, now=now))["released"] == 1
    dying = False
    [(token, ids)] = await _dispatch(runtime, now)
    await deliver_batch(runtime.delivery, token=token, message_ids=ids)
    row = (await statuses(runtime, task.id))["later@example.net"]
    assert (row.status, row.claims, row.attempts) == (MessageStatus.DELIVERED, 0, 2)
