"""Change notices: "task X changed", told after commit to whoever follows X.

``taskProgress`` used to read the database every 0.3 s per open subscription.
Now whatever changes a task's state or counts calls ``changed(session, task_id)``
inside its transaction; when (and only if) that transaction commits, the
process's ``HUB`` wakes the subscriptions following that id, which then read
the new state once. Notices carry only ids: the database stays the source of
truth, and a lost notice costs a delay (subscriptions still re-read on a slow
timer), never a wrong answer.

Workers in other processes reach this one through relays: ``koomsg serve`` and
``koomsg worker`` with a Redis broker add one (``worker/notices.py``) that
publishes every notice on a Redis channel and hands the ones it hears to
``HUB.deliver``. The hub is one per process, as the metrics registry is:
embedded workers run in their own threads and event loop, so it is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import event
from sqlmodel.ext.asyncio.session import AsyncSession

Relay = Callable[[list[str]], None]
_PENDING = "koomsg_notices"
_HOOKED = "koomsg_notices_hooked"


class Listener:
    """Wakes when one of its topics is announced; used from one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def notify(self) -> None:
        with contextlib.suppress(RuntimeError):  # the follower's loop has closed
            self._loop.call_soon_threadsafe(self._event.set)

    @property
    def woken(self) -> bool:
        """A notice came and nobody has waited for it yet."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Until a notice comes (callers bound it with ``asyncio.timeout``)."""
        await self._event.wait()
        # Cleared at once, before the caller re-reads: a notice arriving while it
        # reads sets the event again and the next wait returns immediately.
        self._event.clear()


class NoticeHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self.relays: list[Relay] = []

    def publish(self, topics: Iterable[str]) -> None:
        """Tell this process's followers and every relay (other processes)."""
        found = sorted(set(topics))
        if not found:
            return
        self.deliver(found)
        for relay in list(self.relays):
            relay(found)

    def deliver(self, topics: Iterable[str]) -> None:
        """Tell this process's followers only (what a relay hands in)."""
        with self._lock:
            woken = {listener for topic in topics for listener in self._listeners.get(topic, ())}
        for listener in woken:
            listener.notify()

    @contextlib.contextmanager
    def listen(self, *topics: str) -> Iterator[Listener]:
        listener = Listener(asyncio.get_running_loop())
        with self._lock:
            for topic in topics:
                self._listeners[topic].add(listener)
        try:
            yield listener
        finally:
            with self._lock:
                for topic in topics:
                    self._listeners[topic].discard(listener)
                    if not self._listeners[topic]:
                        del self._listeners[topic]


HUB = NoticeHub()


def key_topic(key_id: str) -> str:
    """The topic announced when an access key is revoked."""
    return f"key:{key_id}"


def changed(session: AsyncSession, *topics: str) -> None:
    """Announce ``topics`` (task ids, ``key:<id>``) once ``session``'s transaction commits."""
    sync = session.sync_session
    if not sync.info.get(_HOOKED):
        sync.info[_HOOKED] = True
        event.listen(sync, "after_commit", _after_commit)
        event.listen(sync, "after_rollback", _after_rollback)
    sync.info.setdefault(_PENDING, set()).update(topics)


def _after_commit(sync: Any) -> None:
    topics = sync.info.pop(_PENDING, None)
    if topics:
        HUB.publish(topics)


def _after_rollback(sync: Any) -> None:
    # Nothing happened: nobody is told.
    sync.info.pop(_PENDING, None)
