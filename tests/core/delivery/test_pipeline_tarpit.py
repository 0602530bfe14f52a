"""A tarpitting server holds a batch past its lease: the heartbeat keeps the rows, so
nothing is swept back, sent twice or settled before its outcome is known.

Issue 14: the lease was renewed once, so a batch slowed by a tarpit was swept
back to TO_SEND and sent a second time by another worker, and the billing
sweeper settled its reservation while the rows were still SENDING.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from koomsg.core.billing.models import LedgerEntry
from koomsg.core.billing.sweep import sweep_reservations
from koomsg.core.clock import utcnow
from koomsg.core.delivery.batch import deliver_batch
from koomsg.core.delivery.dispatch import dispatch_due
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.delivery.sweep import sweep
from koomsg.runtime import Runtime
from koomsg.testing.delivery import later, make_task, statuses
from koomsg.testing.plugin import Api, EnterpriseHandle, sendable_setup
from koomsg.testing.smtp import ScriptedHandler, ScriptedSMTPServer
from tests.e2e.e2e_support import wait_until

LEASE = 1.0
RECIPIENTS = [f"r{i}@example.net" for i in range(6)]


class TarpitHandler(ScriptedHandler):
    """Holds every message after DATA until the test lets go (bounded: 60 s)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.holding = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.holding += 1
        for _ in range(3000):
            if self.release.is_set():
                break
            await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def tarpit(make_smtp_server: Any) -> ScriptedSMTPServer:
    return make_smtp_server(handler=TarpitHandler())  # type: ignore[no-any-return]


@pytest.fixture
def koomsg_env(tarpit: ScriptedSMTPServer) -> dict[str, str]:
    return {
        "KOOMSG_TRANSPORT": "smtp",
        "KOOMSG_SMTP_URL": tarpit.url,
        "KOOMSG_SMTP_TIMEOUT": "90",
        "KOOMSG_LEASE_SECONDS": str(LEASE),
    }


async def _lease_until(runtime: Runtime, ids: list[str]) -> Any:
    async with runtime.db.session() as session:
        return (
            await session.execute(select(func.min(Message.lease_until)).where(Message.id.in_(ids)))  # type: ignore[attr-defined]
        ).scalar_one()


async def test_a_batch_held_past_its_lease_is_delivered_and_charged_once(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, tarpit: ScriptedSMTPServer
) -> None:
    handler = tarpit.handler
    assert isinstance(handler, TarpitHandler)
    setup = await sendable_setup(api, runtime)
    task = await make_task(runtime, setup, enterprise.id, RECIPIENTS)
    batches: list[tuple[str, list[str]]] = []
    await dispatch_due(runtime.delivery, enqueue=lambda token, ids: batches.append((token, ids)))
    [(token, ids)] = batches
    sending = asyncio.create_task(deliver_batch(runtime.delivery, token=token, message_ids=ids))
    try:
        await wait_until(lambda: handler.holding == len(ids), within=30, what="all in the tarpit")
        first_until = await _lease_until(runtime, ids)
        # Wait (bounded) until the clock is past the lease the rows were claimed with and
        # the heartbeat has renewed them since: the old code lost them here.
        await wait_until(lambda: utcnow() > first_until, within=30, what="the first lease to end")

        async def renewed() -> bool:
            return bool(await _lease_until(runtime, ids) > first_until)

        await wait_until(renewed, within=30, what="a heartbeat")
        assert (await sweep(runtime.delivery))["released"] == 0
        again: list[tuple[str, list[str]]] = []
        assert await dispatch_due(runtime.delivery, enqueue=lambda t, i: again.append((t, i))) == 0
        # However old the reservation is, its rows are still leased: it is not settled.
        far = later(3600)
        assert await sweep_reservations(runtime.delivery, now=far) == 0
    finally:
        handler.release.set()
        report = await sending

    assert set(report.outcomes.values()) == {MessageStatus.DELIVERED}
    rows = await statuses(runtime, task.id)
    assert {row.status for row in rows.values()} == {MessageStatus.DELIVERED}
    received = Counter(m.message_id for m in handler.messages)
    assert len(received) == len(RECIPIENTS) and set(received.values()) == {1}
    async with runtime.db.session() as session:
        charged = Counter(
            (await session.execute(select(LedgerEntry.message_id))).scalars().all()  # type: ignore[call-overload]
        )
    assert charged == Counter(ids)
    # The batch settled its own reservation; the sweeper finds nothing left to do.
    assert await sweep_reservations(runtime.delivery, now=later(3600)) == 0
