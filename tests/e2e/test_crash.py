"""Crash tests with the real brokers: a 2 000-recipient task survives a kill -9 of its
``koomsg worker`` and a broker that loses every queued message.

The test process hosts the SMTP sink and prepares the data in a scratch
PostgreSQL database; the workers are real ``koomsg worker`` subprocesses on
Redis or RabbitMQ. Every message must end DELIVERED and reach the sink; the
only duplicate tolerated is a message whose 250 arrived but whose outcome the
killed worker had not written yet (its row was SENDING at the kill).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.tasks.models import SendingTask, TaskStatus
from koomsg.runtime import Runtime
from koomsg.testing.plugin import make_test_settings
from koomsg.testing.smtp import ScriptedHandler, ScriptedSMTPServer
from tests.e2e.e2e_support import KoomsgProcess, koomsg_env, started_task, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.broker]

RECIPIENTS = 2000
KILL_AFTER = 300  # messages in the sink before the worker is killed or the broker flushed
REDIS_URL = "redis://127.0.0.1:6379/13"  # a database no other test uses; flushed at start
AMQP_BASE = "amqp://guest:guest@127.0.0.1:5672"
DELIVERY_QUEUES = ("koomsg-delivery", "koomsg-delivery.DQ", "koomsg-delivery.XQ")


def _brokers() -> list[str]:
    # `make test-postgres` runs the suite once per broker (the second run only `-m broker`):
    # follow its choice so each crash scenario runs once; standalone, run both.
    configured = os.environ.get("KOOMSG_TEST_BROKER_URL", "")
    if configured.startswith("redis"):
        return ["redis"]
    if configured.startswith("amqp"):
        return ["rabbitmq"]
    return ["redis", "rabbitmq"]


class SlowHandler(ScriptedHandler):
    """Takes a little time per message, so a kill lands in the middle of the task."""

    delay = 0.02

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Broker:
    kind: str
    url: str
    flush: Callable[[], None]


def _purge_rabbitmq(url: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for queue in DELIVERY_QUEUES:
            channel = connection.channel()
            try:
                channel.queue_purge(queue)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                pass  # not declared yet: nothing to purge
    finally:
        connection.close()


@pytest.fixture(params=_brokers())
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        try:
            yield Broker("redis", REDIS_URL, client.flushdb)
        finally:
            client.flushdb()
            client.close()
        return
    # A vhost of its own keeps other test runs' consumers off these queues (they share
    # queue names); without rabbitmqctl, fall back to purging the default vhost.
    ctl = shutil.which("rabbitmqctl")
    vhost = f"koomsg_crash_{secrets.token_hex(4)}"

    def rabbitmqctl(*args: str) -> bool:
        assert ctl is not None
        done = subprocess.run([ctl, *args], capture_output=True, timeout=60)
        return done.returncode == 0

    if ctl and rabbitmqctl("add_vhost", vhost):
        try:
            assert rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
            url = f"{AMQP_BASE}/{vhost}"
            yield Broker("rabbitmq", url, lambda: _purge_rabbitmq(url))
        finally:
            rabbitmqctl("delete_vhost", vhost)
        return
    url = f"{AMQP_BASE}/%2F"
    _purge_rabbitmq(url)
    try:
        yield Broker("rabbitmq", url, lambda: _purge_rabbitmq(url))
    finally:
        _purge_rabbitmq(url)


@pytest.fixture
def sink(make_smtp_server: Callable[..., ScriptedSMTPServer]) -> ScriptedSMTPServer:
    return make_smtp_server(handler=SlowHandler())


@dataclass
class Scenario:
    runtime: Runtime
    task_id: str
    message_ids: set[str]
    worker_env: dict[str, str]


@pytest.fixture
async def scenario(
    scratch_pg_url: str, broker: Broker, sink: ScriptedSMTPServer, tmp_path: Path
) -> AsyncIterator[Scenario]:
    """A started 2 000-recipient task in the scratch database, and the workers' environment."""
    settings = make_test_settings(scratch_pg_url, tmp_path / "setup", KOOMSG_BROKER_URL="")
    runtime = Runtime.build(settings)
    try:
        task_id, ids = await started_task(runtime, "Crash Test", RECIPIENTS)
        env = koomsg_env(
            tmp_path / "worker",
            KOOMSG_DATABASE_URL=scratch_pg_url,
            KOOMSG_BROKER_URL=broker.url,
            KOOMSG_TRANSPORT="smtp",
            KOOMSG_SMTP_URL=f"smtp://127.0.0.1:{sink.port}",
            KOOMSG_SMTP_TIMEOUT="10",
            KOOMSG_PUBLIC_URL=settings.public_url,
            KOOMSG_LEASE_SECONDS="5",
            KOOMSG_REDISPATCH_SECONDS="5",
            KOOMSG_SWEEP_INTERVAL="1",
            KOOMSG_DISPATCH_INTERVAL="0.5",
            KOOMSG_BATCH_SIZE="50",
        )
        yield Scenario(runtime, task_id, ids, env)
    finally:
        await runtime.close()


async def _ids_with_status(runtime: Runtime, task_id: str, status: MessageStatus) -> set[str]:
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(Message.id).where(Message.task_id == task_id, Message.status == status)
        )
        return set(rows.scalars().all())


async def _task_completed(runtime: Runtime, task_id: str) -> bool:
    async with runtime.db.session() as session:
        task = await session.get(SendingTask, task_id, populate_existing=True)
        assert task is not None
        return TaskStatus(task.status) is TaskStatus.COMPLETED


async def _status_counts(runtime: Runtime, task_id: str) -> dict[str, int]:
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(Message.status, func.count())
            .where(Message.task_id == task_id)
            .group_by(Message.status)
        )
        return {str(status): int(count) for status, count in rows.all()}


def _start_worker(spawn: Callable[..., KoomsgProcess], env: dict[str, str]) -> KoomsgProcess:
    return spawn(["worker", "--threads", "4"], env)


async def _wait_for_sink(sink: ScriptedSMTPServer, count: int, worker: KoomsgProcess) -> None:
    async def enough() -> bool:
        assert worker.alive(), f"the worker died:\n{worker.tail()}"
        return len(sink.messages) >= count

    await wait_until(enough, within=60, interval=0.02, what=f"{count} messages in the sink")


async def _wait_for_completion(scenario: Scenario, worker: KoomsgProcess) -> None:
    try:
        await wait_until(
            lambda: _task_completed(scenario.runtime, scenario.task_id),
            within=120,
            interval=0.25,
            what="the task to complete",
        )
    except AssertionError as exc:
        counts = await _status_counts(scenario.runtime, scenario.task_id)
        raise AssertionError(f"{exc}; message statuses {counts}\n{worker.tail()}") from None


def _check_sink(
    scenario: Scenario, sink: ScriptedSMTPServer, tolerated: set[str]
) -> dict[str, int]:
    """Every message reached the sink; a duplicate only for a row in ``tolerated``."""
    received = Counter(
        (message.message_id or "").strip("<>").split("@", 1)[0] for message in sink.messages
    )
    assert set(received) == scenario.message_ids, (
        f"missing {len(scenario.message_ids - set(received))}, "
        f"unexpected {len(set(received) - scenario.message_ids)}"
    )
    duplicates = {message_id: n for message_id, n in received.items() if n > 1}
    assert set(duplicates) <= tolerated, (
        f"sent twice though not in flight at the crash: {sorted(set(duplicates) - tolerated)[:10]}"
    )
    assert all(n == 2 for n in duplicates.values()), duplicates
    return duplicates


async def test_kill_9_of_a_worker_mid_task_then_restart(
    scenario: Scenario,
    sink: ScriptedSMTPServer,
    spawn: Callable[..., KoomsgProcess],
) -> None:
    first = _start_worker(spawn, scenario.worker_env)
    await _wait_for_sink(sink, KILL_AFTER, first)
    first.kill()
    # What the killed worker had claimed: the only rows that may reach the sink twice.
    in_flight = await _ids_with_status(scenario.runtime, scenario.task_id, MessageStatus.SENDING)
    delivered_at_kill = len(sink.messages)
    assert delivered_at_kill < RECIPIENTS, "the kill came too late to test anything"
    assert not await _task_completed(scenario.runtime, scenario.task_id)

    second = _start_worker(spawn, scenario.worker_env)
    await _wait_for_completion(scenario, second)

    assert await _status_counts(scenario.runtime, scenario.task_id) == {"DELIVERED": RECIPIENTS}
    _check_sink(scenario, sink, tolerated=in_flight)
    assert second.terminate() == 0, second.tail()


async def test_broker_flushed_mid_task(
    scenario: Scenario,
    broker: Broker,
    sink: ScriptedSMTPServer,
    spawn: Callable[..., KoomsgProcess],
) -> None:
    worker = _start_worker(spawn, scenario.worker_env)
    await _wait_for_sink(sink, KILL_AFTER, worker)
    broker.flush()
    assert len(sink.messages) < RECIPIENTS, "the flush came too late to test anything"

    # The rows whose batches were lost are re-dispatched once KOOMSG_REDISPATCH_SECONDS pass.
    await _wait_for_completion(scenario, worker)

    assert await _status_counts(scenario.runtime, scenario.task_id) == {"DELIVERED": RECIPIENTS}
    # No worker died, so every outcome was written: not a single duplicate.
    _check_sink(scenario, sink, tolerated=set())
    assert worker.terminate() == 0, worker.tail()
