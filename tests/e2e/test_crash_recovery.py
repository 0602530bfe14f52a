"""kill -9 in the middle of a 3 000-recipient task: at most KOOMSG_MAX_IN_FLIGHT (20)
messages sent twice per killed process, each again with its own Message-ID, and the
task COMPLETED within a lease period plus the sending time.

Issue 14 measured on main: a kill -9 of the embedded ``koomsg serve`` sent 504
recipients their message twice (a whole batch's outcomes were still in memory)
and the task finished only when the 300 s lease ran out; two workers on
PostgreSQL + Redis each killed once sent 2 101 twice.

The test process hosts the SMTP sink (loopback) and prepares the data; the
servers and workers are real ``koomsg`` subprocesses. Waits are bounded, never
timed assertions.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from koomsg.core.delivery.models import Message, MessageStatus
from koomsg.core.tasks.models import SendingTask, TaskStatus
from koomsg.runtime import Runtime
from koomsg.testing.plugin import make_test_settings
from koomsg.testing.smtp import ScriptedHandler, ScriptedSMTPServer
from tests.e2e.e2e_support import KoomsgProcess, free_port, koomsg_env, started_task, wait_until

pytestmark = pytest.mark.slow

RECIPIENTS = 3000
MAX_IN_FLIGHT = 20  # the default of KOOMSG_MAX_IN_FLIGHT: what one kill may send twice
# Generous bound on sending what is left after a kill on a loaded 2-core machine.
SENDING_TIME = 150.0


class SlowSink(ScriptedHandler):
    """A little time per message, so the kill lands in the middle of the task."""

    delay = 0.01

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def sink(make_smtp_server: Callable[..., ScriptedSMTPServer]) -> ScriptedSMTPServer:
    return make_smtp_server(handler=SlowSink())


async def _prepare(database_url: str, data_dir: Path) -> tuple[str, set[str], str]:
    """A started task of RECIPIENTS messages: (task id, message ids, public URL)."""
    settings = make_test_settings(database_url, data_dir, KOOMSG_BROKER_URL="")
    runtime = Runtime.build(settings)
    try:
        task_id, ids = await started_task(runtime, "Crash Recovery", RECIPIENTS)
        return task_id, ids, settings.public_url
    finally:
        await runtime.close()


class Watch:
    """The test's read-only view of the database the subprocesses write."""

    def __init__(self, database_url: str, data_dir: Path, task_id: str) -> None:
        settings = make_test_settings(database_url, data_dir, KOOMSG_BROKER_URL="")
        self.runtime = Runtime.build(settings)
        self.task_id = task_id

    async def held_by(self, pid: int) -> set[str]:
        """Rows a process held (SENDING under its lease): the only ones it may send twice."""
        async with self.runtime.db.session() as session:
            rows = await session.execute(
                select(Message.id).where(
                    Message.task_id == self.task_id,
                    Message.status == MessageStatus.SENDING,
                    Message.lease_owner.like(f"%:{pid}:%"),  # type: ignore[union-attr]
                )
            )
            return set(rows.scalars().all())

    async def completed(self) -> bool:
        async with self.runtime.db.session() as session:
            task = await session.get(SendingTask, self.task_id, populate_existing=True)
            assert task is not None
            return TaskStatus(task.status) is TaskStatus.COMPLETED

    async def counts(self) -> dict[str, int]:
        async with self.runtime.db.session() as session:
            rows = await session.execute(
                select(Message.status, func.count())
                .where(Message.task_id == self.task_id)
                .group_by(Message.status)  # type: ignore[arg-type]
            )
            return {str(status): int(count) for status, count in rows.all()}

    async def wait_completed(self, within: float, *processes: KoomsgProcess) -> None:
        try:
            await wait_until(self.completed, within=within, interval=0.25, what="COMPLETED")
        except AssertionError as exc:
            tails = "\n".join(p.tail() for p in processes)
            raise AssertionError(f"{exc}; statuses {await self.counts()}\n{tails}") from None


async def _wait_for_sink(sink: ScriptedSMTPServer, count: int, *alive: KoomsgProcess) -> None:
    async def enough() -> bool:
        for process in alive:
            assert process.alive(), f"koomsg died:\n{process.tail()}"
        return len(sink.handler.messages) >= count

    await wait_until(enough, within=120, interval=0.01, what=f"{count} messages in the sink")


def _check_sink(sink: ScriptedSMTPServer, ids: set[str], kills: list[set[str]]) -> Counter[str]:
    """Every message arrived; a duplicate only of a row a killed process held, at most
    MAX_IN_FLIGHT per kill, and each recipient saw one Message-ID however often."""
    by_id: Counter[str] = Counter()
    per_recipient: dict[str, set[str]] = defaultdict(set)
    for message in sink.handler.messages:
        message_id = (message.message_id or "").strip("<>").split("@", 1)[0]
        by_id[message_id] += 1
        for recipient in message.rcpt_tos:
            per_recipient[recipient].add(message.message_id or "")
    assert set(by_id) == ids, f"missing {len(ids - set(by_id))}, unexpected {set(by_id) - ids}"
    duplicates = {m for m, n in by_id.items() if n > 1}
    held = set().union(*kills)
    assert duplicates <= held, f"sent twice though not held at a kill: {duplicates - held}"
    for in_flight in kills:
        assert len(duplicates & in_flight) <= MAX_IN_FLIGHT, len(duplicates & in_flight)
    assert all(n == 2 for m, n in by_id.items() if m in duplicates)
    assert all(len(seen) == 1 for seen in per_recipient.values())
    return by_id


async def test_kill_9_of_the_embedded_server_mid_task(
    tmp_path: Path, sink: ScriptedSMTPServer, spawn: Callable[..., KoomsgProcess]
) -> None:
    from koomsg.migrations import upgrade_async

    data_dir = tmp_path / "var"
    url = f"sqlite+aiosqlite:///{data_dir / 'koomsg.db'}"
    data_dir.mkdir()
    await upgrade_async(url)
    task_id, ids, public_url = await _prepare(url, data_dir)
    port = free_port()
    env = koomsg_env(
        data_dir,
        KOOMSG_TRANSPORT="smtp",
        KOOMSG_SMTP_URL=sink.url,
        KOOMSG_PUBLIC_URL=public_url,
        KOOMSG_DISPATCH_INTERVAL="0.2",
    )
    watch = Watch(url, data_dir, task_id)
    try:
        first = spawn(["serve", "--port", str(port)], env)
        await _wait_for_sink(sink, RECIPIENTS // 2, first)
        first.kill()
        held = await watch.held_by(first.pid)
        assert len(sink.handler.messages) < RECIPIENTS, "the kill came too late to test anything"

        second = spawn(["serve", "--port", str(port)], env)

        async def healthy() -> bool:
            assert second.alive(), second.tail()
            try:
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    return response.status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(healthy, within=60, what="the restarted server")
        # Released at start-up, not when the lease runs out.
        assert await watch.held_by(first.pid) == set()
        await watch.wait_completed(30 + SENDING_TIME, second)
        assert await watch.counts() == {"DELIVERED": RECIPIENTS}
        _check_sink(sink, ids, [held])
        assert second.terminate() == 0, second.tail()
    finally:
        await watch.runtime.close()


@pytest.fixture
def redis_broker() -> Iterator[str]:
    url = os.environ.get("KOOMSG_TEST_BROKER_URL", "")
    if not url.startswith("redis"):
        pytest.skip("needs KOOMSG_TEST_BROKER_URL=redis://…")
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.mark.broker
async def test_kill_9_of_each_of_two_workers_mid_task(
    scratch_pg_url: str,
    redis_broker: str,
    tmp_path: Path,
    sink: ScriptedSMTPServer,
    spawn: Callable[..., KoomsgProcess],
) -> None:
    lease = 10.0
    task_id, ids, public_url = await _prepare(scratch_pg_url, tmp_path / "setup")
    env = koomsg_env(
        tmp_path / "worker",
        KOOMSG_DATABASE_URL=scratch_pg_url,
        KOOMSG_BROKER_URL=redis_broker,
        KOOMSG_TRANSPORT="smtp",
        KOOMSG_SMTP_URL=sink.url,
        KOOMSG_PUBLIC_URL=public_url,
        KOOMSG_LEASE_SECONDS=str(lease),
        # Batches a killed worker had taken from Redis come back after this.
        KOOMSG_REDISPATCH_SECONDS=str(lease),
        KOOMSG_SWEEP_INTERVAL="1",
        KOOMSG_DISPATCH_INTERVAL="0.5",
        KOOMSG_BATCH_SIZE="100",
    )
    watch = Watch(scratch_pg_url, tmp_path / "setup", task_id)

    def worker() -> KoomsgProcess:
        return spawn(["worker", "--threads", "4"], env)

    try:
        workers = [worker(), worker()]
        kills: list[set[str]] = []
        for turn, at in enumerate((RECIPIENTS // 3, 2 * RECIPIENTS // 3)):
            await _wait_for_sink(sink, at, *workers)
            victim = workers[turn]
            victim.kill()
            kills.append(await watch.held_by(victim.pid))
            workers[turn] = worker()
        assert len(sink.handler.messages) < RECIPIENTS, "the kills came too late"
        await watch.wait_completed(2 * lease + SENDING_TIME, *workers)
        assert await watch.counts() == {"DELIVERED": RECIPIENTS}
        _check_sink(sink, ids, kills)
        for process in workers:
            assert process.terminate() == 0, process.tail()
    finally:
        await watch.runtime.close()
