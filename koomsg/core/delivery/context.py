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

import pluggy

from koomsg.config import Settings
from koomsg.core.db import Database
from koomsg.core.delivery.content import Content
from koomsg.plugins.types import Transport

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


class SendWindow:
    """How many messages this process may have between their hand-off to the transport and
    their written outcome (``KOOMSG_MAX_IN_FLIGHT``).

    A kill -9 loses exactly those outcomes, and their rows are sent again, so this is
    the bound on what a crash sends twice. One semaphore per event loop (dramatiq's
    AsyncIO middleware runs one per process).
    """

    def __init__(self) -> None:
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def slots(self, limit: int) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            slots = self._slots.get(loop)
            if slots is None:
                slots = self._slots[loop] = asyncio.Semaphore(limit)
            return slots


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
    window: SendWindow = field(default_factory=SendWindow)

    @property
    def transport(self) -> Transport:
        """The transport named by ``KOOMSG_TRANSPORT``."""
        return self.resolve_transport()
