"""last_used_at: at most one write a minute per key, across processes, never failing a request."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest

from koomsg.core.clock import utcnow
from koomsg.core.db import Database
from koomsg.core.iam.keys import issue_key
from koomsg.core.iam.models import AccessKey
from koomsg.core.iam.usage import KeyUsage
from koomsg.core.principal import PrincipalKind
from koomsg.runtime import Runtime


class Clock:
    def __init__(self) -> None:
        self.now = utcnow().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


async def new_key(runtime: Runtime) -> str:
    async with runtime.db.transaction() as session:
        key, _ = await issue_key(session, kind=PrincipalKind.OPERATOR, name="ops")
    return key.id


async def last_used(runtime: Runtime, key_id: str) -> datetime | None:
    async with runtime.db.session() as session:
        key = await session.get(AccessKey, key_id)
        assert key is not None
        return key.last_used_at


async def test_one_write_a_minute_per_key(runtime: Runtime) -> None:
    key_id, clock = await new_key(runtime), Clock()
    usage = KeyUsage(runtime.db, clock=clock)
    usage.touch(key_id)
    await usage.drain()
    first = clock.now
    assert await last_used(runtime, key_id) == first
    clock.now += timedelta(seconds=30)
    usage.touch(key_id)
    assert usage.pending == 0  # remembered in the process: not even a task
    # Another process within the minute: its conditional UPDATE changes nothing.
    other = KeyUsage(runtime.db, clock=clock)
    other.touch(key_id)
    await other.drain()
    assert await last_used(runtime, key_id) == first
    clock.now += timedelta(seconds=31)
    usage.touch(key_id)
    await usage.drain()
    assert await last_used(runtime, key_id) == clock.now


async def test_a_failed_write_is_logged_and_forgotten(
    runtime: Runtime, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Database(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'no.db'}")
    try:
        usage = KeyUsage(broken)
        with caplog.at_level(logging.WARNING, logger="koomsg.iam.usage"):
            usage.touch("key_nonexistent")  # returns at once, raises nothing
            await usage.drain()
        assert "could not record the use of access key key_nonexistent" in caplog.text
    finally:
        await broken.dispose()
