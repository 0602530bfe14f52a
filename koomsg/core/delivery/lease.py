"""Leases: who holds a claimed row, and the heartbeat that keeps holding it while it sends.

A batch's rows are SENDING with a lease of ``KOOMSG_LEASE_SECONDS``. While the
batch runs, ``Lease`` renews the rows it still holds every third of that, so a
slow receiving server (a tarpit) never lets the lease run out and the sweeper
never hands the rows to a second worker. A row the renewal no longer finds
(the sweeper or another batch took it) is dropped and never sent here; so is
every row while renewing fails for longer than the safe part of the lease.

``lease_owner`` names the process (``host:pid:nonce``), so a restarted
embedded server can tell its dead predecessor's rows from live ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import update

from koomsg.core.clock import utcnow
from koomsg.core.delivery.context import DeliveryContext
from koomsg.core.delivery.models import Message, MessageStatus

log = logging.getLogger(__name__)
MESSAGE = Message.__table__  # type: ignore[attr-defined]
# A pid is reused after a restart (pid 1 in a container): the nonce tells two lives apart.
_NONCE = secrets.token_hex(4)


def process_owner() -> str:
    """This process's lease owner id: ``host:pid:nonce`` (at most 64 characters)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{_NONCE}"


def owner_is_gone(owner: str, *, me: str | None = None) -> bool:
    """Whether ``owner`` was a process of this host that no longer runs.

    Only this host's processes can be checked; one elsewhere is never "gone" here
    (the sweeper frees its rows when their lease runs out).
    """
    me = me or process_owner()
    host, _, rest = owner.partition(":")
    my_host, _, my_rest = me.partition(":")
    pid_text = rest.partition(":")[0]
    if host != my_host or owner == me or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == int(my_rest.partition(":")[0]):
        return True  # our pid with another nonce: our own previous life
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # someone else's live process
    return False


class Lease:
    """The rows one batch holds, renewed on a timer (``start``/``stop``) while it sends."""

    def __init__(self, context: DeliveryContext, token: str, message_ids: Iterable[str]) -> None:
        self.context = context
        self.token = token
        self.held: set[str] = set(message_ids)
        self._renewed_at = time.monotonic()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def interval(self) -> float:
        return self.context.settings.lease_seconds / 3

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat(), name=f"lease-{self.token}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def done_with(self, message_ids: Iterable[str]) -> None:
        """Rows whose outcome is written: nothing left to renew."""
        self.held.difference_update(message_ids)

    async def renew(self, *, older_than: float = 0.0) -> set[str]:
        """Renew every row still held; the ones that were not renewed are given up.

        ``older_than``: only when the last renewal is older than that many seconds (many
        sends noticing a late heartbeat at once renew once).
        """
        async with self._lock:
            if time.monotonic() - self._renewed_at < older_than:
                return set(self.held)
            ids = list(self.held)
            started = time.monotonic()
            if ids:
                renewed = await self._renew(ids)
                lost = set(ids) - renewed
                if lost:
                    log.warning("batch %s lost %d rows to an expired lease", self.token, len(lost))
                    self.held.difference_update(lost)
            self._renewed_at = started
            return set(self.held)

    async def holds(self, message_id: str) -> bool:
        """Whether the row may be sent now: still held, and renewed recently enough that
        its lease cannot have run out (a late heartbeat is made up for first)."""
        late = self.interval * 1.5
        if time.monotonic() - self._renewed_at > late:
            with contextlib.suppress(Exception):
                await self.renew(older_than=late)
        fresh = time.monotonic() - self._renewed_at < self.interval * 2
        return fresh and message_id in self.held

    async def _renew(self, ids: list[str]) -> set[str]:
        until = utcnow() + timedelta(seconds=self.context.settings.lease_seconds)
        async with self.context.db.transaction() as session:
            result = await session.execute(
                update(MESSAGE)
                .where(
                    MESSAGE.c.id.in_(ids),
                    MESSAGE.c.status == MessageStatus.SENDING,
                    MESSAGE.c.lease_token == self.token,
                )
                .values(lease_until=until)
                .returning(MESSAGE.c.id)
            )
            return set(result.scalars().all())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.renew()
            except Exception:
                log.warning("renewing the lease of batch %s failed", self.token, exc_info=True)
