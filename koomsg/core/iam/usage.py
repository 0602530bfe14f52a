"""When each access key was last used, recorded off the request path.

Authentication only calls ``KeyUsage.touch``: a dictionary look-up and, at
most once a minute per key and process, a background task. That task runs
one conditional UPDATE in its own transaction::

    UPDATE access_key SET last_used_at = :now
    WHERE id = :key AND (last_used_at IS NULL OR last_used_at < :now - 60 s)

so across any number of processes a key's row is written at most about once
a minute. A failure there is logged and forgotten: it never slows or fails
the request that used the key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col

from koomsg.core.clock import utcnow
from koomsg.core.db import Database
from koomsg.core.iam.models import AccessKey

log = logging.getLogger("koomsg.iam.usage")

INTERVAL = timedelta(seconds=60)
_REMEMBERED = 10_000  # keys remembered per process before the memory starts over


class KeyUsage:
    def __init__(
        self,
        db: Database,
        *,
        interval: timedelta = INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.interval = interval
        self.clock = clock
        self._written: dict[str, datetime] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def touch(self, key_id: str) -> None:
        """Note that ``key_id`` authenticated now; never raises, never waits."""
        now = self.clock()
        last = self._written.get(key_id)
        if last is not None and now - last < self.interval:
            return
        if len(self._written) >= _REMEMBERED:
            self._written.clear()
        self._written[key_id] = now
        try:
            task = asyncio.get_running_loop().create_task(self._record(key_id, now))
        except RuntimeError:  # no running loop: nothing to record with
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, key_id: str, now: datetime) -> None:
        try:
            async with self.db.transaction() as session:
                await session.execute(
                    update(AccessKey)
                    .where(
                        col(AccessKey.id) == key_id,
                        or_(
                            col(AccessKey.last_used_at).is_(None),
                            col(AccessKey.last_used_at) < now - self.interval,
                        ),
                    )
                    .values(last_used_at=now)
                )
        except Exception:
            log.warning("could not record the use of access key %s", key_id, exc_info=True)

    @property
    def pending(self) -> int:
        """Writes scheduled and not yet done."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for the pending writes (at shutdown, and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
