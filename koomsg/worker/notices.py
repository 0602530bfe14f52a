"""Change notices between processes over Redis pub/sub (see ``core/notices.py``).

With a Redis broker, every ``koomsg serve`` and ``koomsg worker`` runs one
relay: notices committed here are published on a channel (by a thread, so a
commit never waits on the network), and notices heard from other processes
are handed to this process's hub. Pub/sub is fire-and-forget, which fits:
a lost notice only delays a stream until its next re-read. RabbitMQ has no
relay; streams there follow other processes' changes by re-reading.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import secrets
import threading
from typing import Any

import redis

from koomsg.core.notices import HUB, NoticeHub

log = logging.getLogger(__name__)
CHANNEL = "koomsg:notices"


class RedisRelay:
    def __init__(self, url: str, *, hub: NoticeHub = HUB, channel: str = CHANNEL) -> None:
        self.hub = hub
        self.channel = channel
        # Our own notices come back on the channel; the hub already delivered them.
        self.origin = secrets.token_hex(8)
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2)
        self._pubsub: Any = self._client.pubsub(ignore_subscribe_messages=True)
        self._outbox: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def start(self) -> None:
        self._pubsub.subscribe(self.channel)
        for target, name in ((self._publish_loop, "publish"), (self._listen_loop, "listen")):
            thread = threading.Thread(target=target, name=f"koomsg-notices-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.hub.relays.append(self._outbox.put)

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.hub.relays.remove(self._outbox.put)
        self._outbox.put(None)
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._pubsub.close()
        self._client.close()

    def _publish_loop(self) -> None:
        while (topics := self._outbox.get()) is not None:
            try:
                message = json.dumps({"origin": self.origin, "topics": topics})
                self._client.publish(self.channel, message)
            except redis.RedisError as exc:
                log.warning("change notice not relayed: %s", exc)

    def _listen_loop(self) -> None:
        # Short reads, so stop() is seen within a second.
        while not self._stopping.is_set():
            try:
                message = self._pubsub.get_message(timeout=1.0)
            except redis.RedisError as exc:
                log.warning("change notice relay lost Redis: %s; retrying", exc)
                self._stopping.wait(1.0)
                continue
            if message is not None:
                self._heard(message.get("data"))

    def _heard(self, data: Any) -> None:
        try:
            notice = json.loads(data)
            topics = [str(topic) for topic in notice["topics"]]
        except (TypeError, ValueError, KeyError):
            return
        if notice.get("origin") != self.origin:
            self.hub.deliver(topics)
