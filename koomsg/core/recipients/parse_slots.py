"""How many recipient files are parsed at once: per enterprise and over the service.

Each parse is a sandboxed child of up to 512 MB and two CPU minutes, so one
tenant uploading fifty files could take every worker and all the memory.

- **Imports** (the long parse of every row, in workers) hold a database claim
  on their task while they run (``importer._claim``). A new claim is taken only
  while fewer than ``KOOMSG_MAX_PARSES_PER_ENTERPRISE`` of the enterprise's and
  ``KOOMSG_MAX_PARSES`` of all imports hold one, counted in the database, so the
  caps hold over any number of workers. Over a cap the import *waits*: the task
  stays PREPARING and the import sweeper offers it again (oldest first) when a
  claim ends or expires, as a queue would. The upload was accepted; refusing it
  later for someone else's load would only make the client retry blindly.
- **Header checks** (the short parse while ``createSendingTask`` runs) are
  counted per process. Over the enterprise's cap the upload is refused at once
  with BAD_USER_INPUT on ``recipientFile`` (the tenant is racing itself and is
  told so); over the service's cap the request waits for a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import func, text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from koomsg.core.errors import BadInput
from koomsg.core.tasks.models import SendingTask, TaskStatus

# Any constant works: it only has to be the same in every process.
_CLAIM_LOCK = 0x6B6F6F6D  # "koom"


async def import_slot_free(
    session: AsyncSession, *, enterprise_id: str, now: datetime, per_enterprise: int, total: int
) -> bool:
    """Whether one more import may start, with the claim taken in this same transaction."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # Two workers counting at once would both see a free slot; SQLite's write
        # transactions are serial already (BEGIN IMMEDIATE).
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
    running = (
        select(col(SendingTask.enterprise_id), func.count())
        .where(
            col(SendingTask.status) == TaskStatus.PREPARING,
            col(SendingTask.import_claimed_until) >= now,
        )
        .group_by(col(SendingTask.enterprise_id))
    )
    counts = {str(e): int(n) for e, n in (await session.execute(running)).all()}
    return sum(counts.values()) < total and counts.get(enterprise_id, 0) < per_enterprise


class HeaderReads:
    """The header checks running in this process (``Runtime`` sets the limits)."""

    def __init__(self, *, per_enterprise: int = 2, total: int = 4) -> None:
        self.configure(per_enterprise=per_enterprise, total=total)
        self._running: Counter[str] = Counter()
        self._reading = 0
        # Used from the API's event loop only: header checks run in createSendingTask.
        self._free = asyncio.Condition()

    def configure(self, *, per_enterprise: int, total: int) -> None:
        self.per_enterprise = per_enterprise
        self.total = total

    @contextlib.asynccontextmanager
    async def slot(self, enterprise_id: str) -> AsyncIterator[None]:
        if self._running[enterprise_id] >= self.per_enterprise:
            raise BadInput(
                "recipientFile",
                f"{self.per_enterprise} recipient files of this enterprise are being read "
                "right now (KOOMSG_MAX_PARSES_PER_ENTERPRISE): send this one when one of "
                "them is done",
            )
        self._running[enterprise_id] += 1
        try:
            async with self._free:
                await self._free.wait_for(self._has_room)
                self._reading += 1
            try:
                yield
            finally:
                async with self._free:
                    self._reading -= 1
                    self._free.notify()
        finally:
            self._running[enterprise_id] -= 1
            if not self._running[enterprise_id]:
                del self._running[enterprise_id]

    def _has_room(self) -> bool:
        return self._reading < self.total


HEADER_READS = HeaderReads()
