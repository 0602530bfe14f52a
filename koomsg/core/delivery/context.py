"""What the delivery core is handed: the process's database, settings, plugins and transport.

``koomsg.runtime.Runtime`` builds one ``DeliveryContext`` per process and keeps
it, so the rendered-content cache lives from one batch to the next. Tests and
partners can build one by hand from the same parts.
"""

from __future__ import annotations

import threading
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

    @property
    def transport(self) -> Transport:
        """The transport named by ``KOOMSG_TRANSPORT``."""
        return self.resolve_transport()
