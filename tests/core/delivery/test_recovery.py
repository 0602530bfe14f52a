"""Quick recovery: a restarted embedded server frees its dead predecessor's rows at once,
outcomes are written while the batch is still sending, and the send window bounds what
a crash could send twice."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import func, select, update

from koomsg.core.delivery.batch import deliver_batch
from koomsg.core.delivery.dispatch import dispatch_due
from koomsg.core.delivery.lease import owner_is_gone, process_owner
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.delivery.sweep import release_dead_predecessors
from koomsg.runtime import Runtime
from koomsg.testing.delivery import drain, later, make_task, statuses
from koomsg.testing.plugin import Api, EnterpriseHandle, sendable_setup

MESSAGE = Message.__table__  # type: ignore[attr-defined]
HOST = socket.gethostname()[:40]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_which_lease_owners_are_gone() -> None:
    me = process_owner()
    assert not owner_is_gone(me, me=me)
    assert owner_is_gone(f"{HOST}:{os.getpid()}:0ld", me=me)  # this pid, an earlier life
    assert owner_is_gone(f"{HOST}:{_dead_pid()}:abcd", me=me)
    assert not owner_is_gone(f"{HOST}:{os.getppid()}:abcd", me=me)  # alive
    assert not owner_is_gone(f"elsewhere:{_dead_pid()}:abcd", me=me)  # cannot tell: wait
    assert not owner_is_gone("garbage", me=me)


async def _hang_batch(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dispatch and start every due batch with a transport that never answers, then cancel
    them: their rows stay SENDING with this process's lease, as after a kill -9."""
    entered = asyncio.Event()

    async def hang(envelope: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(runtime.transport, "send", hang)
    batches: list[tuple[str, list[str]]] = []
    await dispatch_due(runtime.delivery, enqueue=lambda t, ids: batches.append((t, ids)))
    running = [
        asyncio.create_task(deliver_batch(runtime.delivery, token=t, message_ids=ids))
        for t, ids in batches
    ]
    await asyncio.wait_for(entered.wait(), 30)
    for batch in running:
        batch.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    monkeypatch.undo()


async def test_start_up_releases_the_dead_predecessors_rows_at_once(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = await sendable_setup(api, runtime)
    recipients = ["dead@example.net", "alive@example.net", "remote@example.net"]
    task = await make_task(runtime, setup, enterprise.id, recipients)
    await _hang_batch(runtime, monkeypatch)
    owners = {
        "dead@example.net": f"{HOST}:{_dead_pid()}:abcd",
        "alive@example.net": f"{HOST}:{os.getppid()}:abcd",
        "remote@example.net": f"elsewhere:{_dead_pid()}:abcd",
    }
    # A row the dead process had dispatched into its in-memory broker, never claimed.
    lost = await make_task(runtime, setup, enterprise.id, ["queued@example.net"])
    async with runtime.db.transaction() as session:
        for recipient, owner in owners.items():
            await session.execute(
                update(MESSAGE).where(MESSAGE.c.recipient == recipient).values(lease_owner=owner)
            )
        await session.execute(
            update(MESSAGE)
            .where(MESSAGE.c.task_id == lost.id)
            .values(lease_token="gone", dispatch_after=later(120))
        )

    result = await release_dead_predecessors(runtime.delivery)
    assert (result["released"], result["requeued"], result["failed"]) == (1, 1, 0)
    rows = await statuses(runtime, task.id)
    assert rows["dead@example.net"].status == MessageStatus.TO_SEND
    assert rows["dead@example.net"].lease_owner is None
    # Live or elsewhere: left to the sweeper, once their lease runs out.
    assert rows["alive@example.net"].status == MessageStatus.SENDING
    assert rows["remote@example.net"].status == MessageStatus.SENDING

    await drain(runtime)  # no clock moved: the released rows are due right now
    assert (await statuses(runtime, task.id))["dead@example.net"].status == (
        MessageStatus.DELIVERED
    )
    assert (await statuses(runtime, lost.id))["queued@example.net"].status == (
        MessageStatus.DELIVERED
    )


@pytest.fixture
def koomsg_env() -> dict[str, str]:
    return {"KOOMSG_MAX_IN_FLIGHT": "5"}


async def test_outcomes_are_written_while_the_batch_sends_within_the_window(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = await sendable_setup(api, runtime)
    recipients = [f"r{i:02d}@example.net" for i in range(60)]
    task = await make_task(runtime, setup, enterprise.id, recipients)
    send = runtime.transport.send
    window = runtime.settings.max_in_flight
    sent = 0
    unwritten: list[int] = []

    async def counting_send(envelope: Any) -> Any:
        nonlocal sent
        sent += 1
        mine = sent  # other sends go on while this one reads the database
        async with runtime.db.session() as session:
            delivered = (
                await session.execute(
                    select(func.count()).where(
                        MESSAGE.c.task_id == task.id, MESSAGE.c.status == MessageStatus.DELIVERED
                    )
                )
            ).scalar_one()
        # Handed over but not written yet, this one included: never beyond the window.
        unwritten.append(mine - delivered)
        return await send(envelope)

    monkeypatch.setattr(runtime.transport, "send", counting_send)
    # Bounded: outcomes written only at the end of the batch would never free the window.
    await asyncio.wait_for(drain(runtime), 60)
    assert {row.status for row in (await statuses(runtime, task.id)).values()} == {
        MessageStatus.DELIVERED
    }
    assert sent == 60
    assert max(unwritten) <= window
