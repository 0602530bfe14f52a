"""Writing a batch's outcomes as they arrive, grouped over a few milliseconds.

An outcome held only in memory is lost with its process, and its message is
then sent again: a 500-message batch recorded in one write at its end made a
kill -9 send hundreds of messages twice. ``OutcomeWriter`` writes each
outcome at most :data:`FLUSH_DELAY` seconds after it arrives, or as soon as
:data:`FLUSH_COUNT` are waiting, one write at a time per batch (outcomes
arriving during a write form the next group), so bulk sending still costs a
few rows per write instead of one write per message.

Each sent message holds a slot of the process's ``SendWindow`` until its
outcome is written: with at most ``KOOMSG_MAX_IN_FLIGHT`` slots, that is the
most a kill -9 can send twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from koomsg.core.delivery.context import DeliveryContext
from koomsg.core.delivery.lease import Lease
from koomsg.core.delivery.record import Outcome, write_outcomes

log = logging.getLogger(__name__)
# Seconds an outcome may wait for others to share its write.
FLUSH_DELAY = 0.005
# Outcomes that are written at once, without waiting for the delay.
FLUSH_COUNT = 10
# Tries of one group's write before the batch gives up (its rows then go back to TO_SEND
# when their lease runs out).
WRITE_TRIES = 3


class OutcomeWriter:
    """The outcomes of one batch, written in groups by a background task.

    ``add`` an outcome (``slot``: it holds a window slot, freed once it is written);
    ``close`` writes what is left and returns every outcome written.
    """

    def __init__(
        self,
        context: DeliveryContext,
        lease: Lease,
        enterprise_id: str,
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        self.context = context
        self.lease = lease
        self.enterprise_id = enterprise_id
        self.slots = slots
        self.written: list[Outcome] = []
        self.failure: Exception | None = None
        self._pending: list[tuple[Outcome, bool]] = []
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name=f"outcomes-{lease.token}")

    def add(self, outcome: Outcome, *, slot: bool = False) -> None:
        self._pending.append((outcome, slot))
        self._wake.set()
        if len(self._pending) >= FLUSH_COUNT:
            self._full.set()

    async def close(self) -> list[Outcome]:
        """Write what is still waiting; raises when a group could not be written."""
        self._closing = True
        self._wake.set()
        self._full.set()
        await self._task
        if self.failure is not None:
            raise self.failure
        return self.written

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._closing and len(self._pending) < FLUSH_COUNT:
                # Let a group form: outcomes of concurrent sends arrive within milliseconds.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), FLUSH_DELAY)
            group, self._pending = self._pending, []
            self._wake.clear()
            self._full.clear()
            try:
                await self._write([outcome for outcome, _ in group])
            except Exception as exc:
                # Keep running so later groups still free their window slots; close() raises.
                log.error("outcomes of batch %s were not written", self.lease.token, exc_info=True)
                self.failure = exc
            finally:
                self._free(sum(1 for _, slot in group if slot))
            if self._closing and not self._pending:
                return

    async def _write(self, outcomes: list[Outcome]) -> None:
        for attempt in range(1, WRITE_TRIES + 1):
            try:
                await write_outcomes(self.context, self.lease.token, outcomes, self.enterprise_id)
                break
            except Exception:
                if attempt == WRITE_TRIES:
                    raise
                log.warning("writing outcomes failed (try %d); trying again", attempt)
                await asyncio.sleep(0.1 * 2**attempt)
        self.lease.done_with(o.message.id for o in outcomes)
        self.written.extend(outcomes)

    def _free(self, count: int) -> None:
        if self.slots is not None:
            for _ in range(count):
                self.slots.release()
