"""A batch that lost its lease before sending leaves the rows to their new owner.

Found by tests/e2e/test_crash.py: a batch waiting for the billing lock outlived
its lease, the sweeper gave its rows to another batch, and both sent them.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from koomsg.core.delivery import batch
from koomsg.core.delivery.dispatch import dispatch_due
from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.delivery.sweep import sweep
from koomsg.runtime import Runtime
from koomsg.testing.delivery import drain, later, make_task, statuses
from koomsg.testing.plugin import Api, EnterpriseHandle, sendable_setup
from tests.e2e.e2e_support import wait_until

MESSAGE = Message.__table__  # type: ignore[attr-defined]


async def test_a_batch_whose_lease_ran_out_before_sending_sends_nothing(
    api: Api, enterprise: EnterpriseHandle, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = await sendable_setup(api, runtime)
    task = await make_task(runtime, setup, enterprise.id, ["a@example.net", "b@example.net"])
    batches: list[tuple[str, list[str]]] = []
    await dispatch_due(runtime.delivery, enqueue=lambda token, ids: batches.append((token, ids)))
    [(token, ids)] = batches

    sent: list[str] = []
    transport = runtime.transport
    send = transport.send

    async def counting_send(envelope: Any) -> Any:
        sent.append(envelope.message_id)
        return await send(envelope)

    monkeypatch.setattr(transport, "send", counting_send)
    after_lease = later(runtime.settings.lease_seconds + 1)
    reserve = batch._reserve

    async def slow_reserve(*args: Any, **kwargs: Any) -> Any:
        # While the batch waits here its lease runs out and the sweeper takes the rows back.
        assert (await sweep(runtime.delivery, now=after_lease))["released"] == 2
        return await reserve(*args, **kwargs)

    monkeypatch.setattr(batch, "_reserve", slow_reserve)
    report = await batch.deliver_batch(runtime.delivery, token=token, message_ids=ids)
    assert report.claimed == 2 and report.outcomes == {}
    assert sent == []

    monkeypatch.setattr(batch, "_reserve", reserve)
    await drain(runtime, now=after_lease)
    rows = await statuses(runtime, task.id)
    assert {row.status for row in rows.values()} == {MessageStatus.DELIVERED}
    assert sorted(sent) == sorted(ids)


@pytest.mark.parametrize(
    "koomsg_env", [{"KOOMSG_LEASE_SECONDS": "0.6", "KOOMSG_MAX_IN_FLIGHT": "1"}]
)
async def test_a_row_taken_while_the_batch_sends_is_given_up_before_sending_it(
    api: Api,
    enterprise: EnterpriseHandle,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    koomsg_env: dict[str, str],
) -> None:
    setup = await sendable_setup(api, runtime)
    task = await make_task(runtime, setup, enterprise.id, ["a@example.net", "b@example.net"])
    batches: list[tuple[str, list[str]]] = []
    await dispatch_due(runtime.delivery, enqueue=lambda token, ids: batches.append((token, ids)))
    [(token, ids)] = batches
    first, second = sorted(ids)
    sent: list[str] = []
    transport = runtime.transport
    send = transport.send

    async def lease_of(message_id: str) -> Any:
        async with runtime.db.session() as session:
            row = await session.get(Message, message_id, populate_existing=True)
            assert row is not None
            return row.lease_until

    async def stealing_send(envelope: Any) -> Any:
        sent.append(envelope.message_id)
        if envelope.message_id == first:
            # Another worker takes the second row (as if its lease had run out) while this
            # one is on the wire; the window of one keeps the second waiting meanwhile.
            async with runtime.db.transaction() as session:
                await session.execute(
                    update(MESSAGE).where(MESSAGE.c.id == second).values(lease_token="other")
                )
            before = await lease_of(first)

            async def heartbeat() -> bool:
                return bool(await lease_of(first) > before)

            await wait_until(heartbeat, within=30, what="a heartbeat")
        return await send(envelope)

    monkeypatch.setattr(transport, "send", stealing_send)
    report = await batch.deliver_batch(runtime.delivery, token=token, message_ids=ids)
    assert sent == [first]
    assert report.outcomes == {first: MessageStatus.DELIVERED}
    rows = await statuses(runtime, task.id)
    taken = next(row for row in rows.values() if row.id == second)
    assert (taken.status, taken.lease_token) == (MessageStatus.SENDING, "other")
