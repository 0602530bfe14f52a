"""What the delivery core is handed: the process's database, settings, plugins and transport.

``koomsg.runtime.Runtime`` builds one ``DeliveryContext`` per process and keeps
it, so the rendered-content cache lives from one batch to the next. Tests and
partners can build one by hand from the same parts.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pluggy

from koomsg.config import Settings
from koomsg.core.db import Database
from koomsg.core.delivery.content import Content
from koomsg.plugins.types import Transport

T = TypeVar("T")
# Tasks (and API template/sender pairs) whose content a worker keeps at once.
CONTENT_CACHE_SIZE = 256


class ContentCache:
    """The content of the tasks a worker sends, least recently used dropped beyond ``size``.

    Entries go stale on their own (``Content.fresh``); the caller rebuilds those.
    """

    def __init__(self, size: int = CONTENT_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, Content] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Content | None:
        with self._lock:
            content = self._entries.get(key)
            if content is not None:
                self._entries.move_to_end(key)
            return content

    def put(self, key: str, content: Content) -> None:
        with self._lock:
            self._entries[key] = content
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class PerLoop:
    """This process's delivery objects that belong to one event loop (asyncio primitives,
    background tasks), built on first use: the send window and the outcome writer.

    dramatiq's AsyncIO middleware runs one loop per worker process, so per loop is per
    process there; tests may run several loops.
    """

    def __init__(self) -> None:
        self._objects: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self, key: str, factory: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        with self._lock:
            objects = self._objects.setdefault(loop, {})
            if key not in objects:
                objects[key] = factory()
            return objects[key]  # type: ignore[no-any-return]


@dataclass(frozen=True, eq=False)
class DeliveryContext:
    """Everything dispatching, sending, recording and sweeping need from the process.

    Billing plugins receive it as the ``context`` of ``koomsg_billing_reserve``.
    """

    db: Database
    settings: Settings
    plugins: pluggy.PluginManager
    # Called on first use: a process that only dispatches never opens a transport.
    resolve_transport: Callable[[], Transport]
    content: ContentCache = field(default_factory=ContentCache)
    per_loop: PerLoop = field(default_factory=PerLoop)

    @property
    def transport(self) -> Transport:
        """The transport named by ``KOOMSG_TRANSPORT``."""
        return self.resolve_transport()

    def window(self) -> asyncio.Semaphore:
        """This process's send window: a slot per message between its hand-off to the
        transport and its written outcome (``KOOMSG_MAX_IN_FLIGHT``). A kill -9 loses
        exactly those outcomes and their rows are sent again, so this bounds what a crash
        sends twice."""
        limit = self.settings.max_in_flight
        return self.per_loop.get("window", lambda: asyncio.Semaphore(limit))
