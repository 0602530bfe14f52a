"""Change notices are told after commit, never for a rolled-back transaction."""

from __future__ import annotations

import asyncio

import pytest

from koomsg.core.clock import utcnow
from koomsg.core.delivery.service import complete_task_if_done
from koomsg.core.notices import HUB, changed
from koomsg.runtime import Runtime


async def test_a_commit_wakes_the_followers_of_its_topics(runtime: Runtime) -> None:
    with HUB.listen("tsk_a") as follower, HUB.listen("tsk_b") as other:
        async with runtime.db.transaction() as session:
            changed(session, "tsk_a")
            await asyncio.sleep(0)
            assert not follower.woken  # not before the commit
        await asyncio.sleep(0)
        assert follower.woken and not other.woken
        await follower.wait()
        assert not follower.woken


async def test_a_rollback_tells_nobody(runtime: Runtime) -> None:
    with HUB.listen("tsk_a") as follower:
        with pytest.raises(RuntimeError):
            async with runtime.db.transaction() as session:
                changed(session, "tsk_a")
                raise RuntimeError("undo")
        async with runtime.db.transaction() as session:
            pass  # the same pool's next transaction commits nothing of the first
        await asyncio.sleep(0)
        assert not follower.woken


async def test_recording_outcomes_announces_the_task(runtime: Runtime) -> None:
    # complete_task_if_done runs after every recorded batch and when a task starts.
    with HUB.listen("tsk_c") as follower:
        async with runtime.db.transaction() as session:
            await complete_task_if_done(session, task_id="tsk_c", now=utcnow())
        await asyncio.sleep(0)
        assert follower.woken


async def test_relays_carry_notices_out_and_in() -> None:
    sent: list[list[str]] = []
    HUB.relays.append(sent.append)
    try:
        with HUB.listen("tsk_d") as follower:
            HUB.deliver(["tsk_d"])  # what a relay hands in: not sent out again
            assert sent == []
            HUB.publish(["tsk_d", "tsk_d", "tsk_e"])
            assert sent == [["tsk_d", "tsk_e"]]
            await asyncio.sleep(0)
            assert follower.woken
    finally:
        HUB.relays.remove(sent.append)
