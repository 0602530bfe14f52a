"""Writing outcomes as they arrive, every batch of the process grouped into few writes.

An outcome held only in memory is lost with its process, and its message is
then sent again: a 500-message batch recorded in one write at its end made a
kill -9 send hundreds of messages twice. The process's ``OutcomeWriter`` (one
per event loop) writes outcomes one group at a time for all of its batches:
an outcome waits at most :data:`FLUSH_DELAY` seconds for others to join its
write (not at all once :data:`FLUSH_COUNT` wait or a send waits for a window
slot), and outcomes arriving during a write form the next group. Bulk sending
thus costs a write per ten or twenty rows rather than one per message.

Each sent message holds a slot of the process's send window
(``DeliveryContext.window``) until its outcome is written: with at most
``KOOMSG_MAX_IN_FLIGHT`` slots, that is the most a kill -9 can send twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from koomsg.core.delivery.context import DeliveryContext
from koomsg.core.delivery.lease import Lease
from koomsg.core.delivery.record import Outcome, Recorded, write_outcomes

log = logging.getLogger(__name__)
# Seconds an outcome may wait for others to share its write.
FLUSH_DELAY = 0.005
# Outcomes that are written at once, without waiting for the delay.
FLUSH_COUNT = 10
# Tries of one group's write before its batches fail (their rows then go back to TO_SEND
# when their lease runs out).
WRITE_TRIES = 3


@dataclass(eq=False)
class BatchOutcomes:
    """What one batch handed to the writer, and what of it is written."""

    lease: Lease
    enterprise_id: str
    written: list[Outcome] = field(default_factory=list)
    waiting: int = 0
    failure: Exception | None = None
    idle: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class _Entry:
    batch: BatchOutcomes
    outcome: Outcome
    slot: bool


class OutcomeWriter:
    """The process's outcome writes; get it with :func:`outcome_writer`."""

    def __init__(self, context: DeliveryContext) -> None:
        self.context = context
        self._pending: list[_Entry] = []
        # One write at a time: a second would only queue for SQLite's write lock (whose
        # busy handler sleeps milliseconds at a time) or for PostgreSQL's row locks.
        self._writing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def open(self, lease: Lease, enterprise_id: str) -> BatchOutcomes:
        batch = BatchOutcomes(lease, enterprise_id)
        batch.idle.set()
        return batch

    def add(self, batch: BatchOutcomes, outcome: Outcome, *, slot: bool = False) -> None:
        """Queue ``outcome`` (``slot``: it holds a window slot, freed once it is written)."""
        self._pending.append(_Entry(batch, outcome, slot))
        batch.waiting += 1
        batch.idle.clear()
        self._flush(now=self._urgent())

    async def close(self, batch: BatchOutcomes) -> list[Outcome]:
        """Wait until everything of ``batch`` is written; raises when some of it was not."""
        self._flush(now=True)
        await batch.idle.wait()
        if batch.failure is not None:
            raise batch.failure
        return batch.written

    def _urgent(self) -> bool:
        # Sends waiting for a window slot wait for these writes: no reason to linger then.
        return len(self._pending) >= FLUSH_COUNT or self.context.window().locked()

    def _flush(self, *, now: bool) -> None:
        """Start a write of what waits, at once or after :data:`FLUSH_DELAY`."""
        if not self._pending or self._writing is not None:
            return  # the write under way looks again when it ends
        if now:
            if self._timer is not None:
                self._timer.cancel()
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._start)

    def _start(self) -> None:
        self._timer = None
        if not self._pending or self._writing is not None:
            return
        group, self._pending = self._pending, []
        self._writing = asyncio.create_task(self._write_group(group), name="koomsg-outcomes")

    async def _write_group(self, group: list[_Entry]) -> None:
        try:
            self._settle(group, await self._write(group))
        finally:
            self._writing = None
            self._flush(now=self._urgent())

    async def _write(self, group: list[_Entry]) -> Exception | None:
        entries = [Recorded(e.batch.lease.token, e.batch.enterprise_id, e.outcome) for e in group]
        for attempt in range(1, WRITE_TRIES + 1):
            try:
                await write_outcomes(self.context, entries)
                return None
            except Exception as exc:
                if attempt == WRITE_TRIES:
                    log.error("%d outcomes were not written", len(group), exc_info=True)
                    return exc
                log.warning("writing outcomes failed (try %d); trying again", attempt)
                await asyncio.sleep(0.1 * 2**attempt)
        return None

    def _settle(self, group: list[_Entry], failure: Exception | None) -> None:
        window = self.context.window()
        for entry in group:
            batch = entry.batch
            if failure is None:
                batch.written.append(entry.outcome)
                batch.lease.done_with([entry.outcome.message.id])
            else:
                batch.failure = failure
            batch.waiting -= 1
            if batch.waiting == 0:
                batch.idle.set()
            if entry.slot:
                window.release()


def outcome_writer(context: DeliveryContext) -> OutcomeWriter:
    """The outcome writer of this process (and event loop)."""
    return context.per_loop.get("outcomes", lambda: OutcomeWriter(context))
