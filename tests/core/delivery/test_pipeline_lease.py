"""A batch that lost its lease before sending leaves the rows to their new owner.

Found by tests/e2e/test_crash.py: a batch waiting for the billing lock outlived
its lease, the sweeper gave its rows to another batch, and both sent them.
"""

from __future__ import annotations

from typing import Any

import pytest

from koomsg.core.delivery import batch
from koomsg.core.delivery.dispatch import dispatch_due
from koomsg.core.delivery.models import MessageStatus
from koomsg.core.delivery.sweep import sweep
from koomsg.runtime import Runtime
from koomsg.testing.delivery import drain, later, make_task, statuses
from koomsg.testing.plugin import Api, EnterpriseHandle, sendable_setup


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
