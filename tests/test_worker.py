"""dramatiq wiring: async actors awaiting core services, on the configured broker."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from sqlmodel import select

from koomsg.core.tenancy import service as tenancy
from koomsg.core.tenancy.models import Enterprise, IndustryClass
from koomsg.runtime import Runtime
from koomsg.worker.actors import koomsg_actor, worker_runtime
from koomsg.worker.services import ProcessServices

pytestmark = pytest.mark.broker


@koomsg_actor(queue_name="koomsg-test", max_retries=0)
async def create_enterprise_later(name: str) -> None:
    async with worker_runtime().db.transaction() as session:
        await tenancy.create_enterprise(
            session, name=name, real_name_verified=False, industry_class=IndustryClass.NON_SENSITIVE
        )


async def test_async_actor_runs_on_the_configured_broker(runtime: Runtime) -> None:
    from koomsg.worker.jobs.imports import enqueue_import

    services = ProcessServices(runtime.settings, embedded_worker=True, threads=2)
    assert runtime.enqueue_import is None  # no worker yet: imports wait for the sweeper
    services.attach(runtime)
    assert runtime.enqueue_import is enqueue_import
    assert await runtime.broker_ping() == "ok"
    await services.start()
    name = f"queued-{secrets.token_hex(4)}"
    try:
        create_enterprise_later.send(name)
        for _ in range(200):
            async with runtime.db.session() as session:
                found = (
                    await session.exec(select(Enterprise).where(Enterprise.name == name))
                ).first()
            if found is not None:
                break
            await asyncio.sleep(0.05)
        assert found is not None, "the actor did not run"
    finally:
        await services.stop()
