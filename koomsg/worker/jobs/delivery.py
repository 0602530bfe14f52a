"""Delivery's actor and periodic jobs: thin wrappers over core/delivery (batch, dispatch, sweep)."""

from __future__ import annotations

from koomsg.core.delivery.batch import deliver_batch
from koomsg.core.delivery.dispatch import dispatch_due
from koomsg.core.delivery.sweep import sweep
from koomsg.runtime import Runtime
from koomsg.worker.actors import koomsg_actor, worker_runtime
from koomsg.worker.periodic import periodic


@koomsg_actor(queue_name="koomsg-delivery", max_retries=3, min_backoff=1000, max_backoff=30000)
async def send_batch(token: str, message_ids: list[str]) -> None:
    await deliver_batch(worker_runtime().delivery, token=token, message_ids=message_ids)


def enqueue_batch(token: str, message_ids: list[str]) -> None:
    send_batch.send(token, message_ids)


@periodic("delivery-dispatcher", lambda settings: settings.dispatch_interval_seconds)
async def dispatch(runtime: Runtime) -> None:
    # Keep going while there is a backlog: a big task is dispatched in a few passes.
    for _ in range(20):
        if await dispatch_due(runtime.delivery, enqueue=enqueue_batch) < 5000:
            return


@periodic("delivery-sweeper", lambda settings: settings.sweep_interval_seconds)
async def sweeper(runtime: Runtime) -> None:
    await sweep(runtime.delivery)
