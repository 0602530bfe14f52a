"""Helpers for end-to-end tests: real ``koomsg`` subprocesses, scratch databases, bounded waits.

Every server or worker a test starts goes through the ``spawn`` fixture, which
kills whatever is still running when the test ends, pass or fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.e2e_support import PG_ADMIN_URL, KoomsgProcess, pg_admin


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., KoomsgProcess]]:
    """Start ``koomsg <args>``; anything still running at the end of the test is killed."""
    started: list[KoomsgProcess] = []

    def start(args: list[str], env: dict[str, str]) -> KoomsgProcess:
        log = tmp_path / f"koomsg-{args[0]}-{len(started)}.log"
        process = KoomsgProcess(args, env, log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.alive():
            process.kill()


@pytest.fixture
async def scratch_pg_url() -> AsyncIterator[str]:
    """A migrated PostgreSQL database of its own, dropped (even while in use) at the end.

    Only with KOOMSG_TEST_DATABASE=postgresql: that run of the suite is the one
    with the real services, and running these twice would only cost time.
    """
    if os.environ.get("KOOMSG_TEST_DATABASE", "sqlite") != "postgresql":
        pytest.skip("needs the real PostgreSQL: runs with KOOMSG_TEST_DATABASE=postgresql")
    from koomsg.migrations import upgrade_async

    name = f"koomsg_crash_{secrets.token_hex(4)}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    try:
        await upgrade_async(url)
        yield url
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
