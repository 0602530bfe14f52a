"""Posts koomsg message events to a webhook URL, batched and signed.

Events arrive through the ``koomsg_message_event`` hook, off koomsg's send
path. They are buffered per event loop and flushed every ``FLUSH_SECONDS`` or
``BATCH_SIZE`` events, whichever comes first.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import weakref
from dataclasses import dataclass, field
from typing import Any

import httpx

from koomsg.plugins import hookimpl
from koomsg.plugins.types import MessageEvent

log = logging.getLogger(__name__)
BATCH_SIZE = 100
FLUSH_SECONDS = 1.0
ATTEMPTS = 3


@dataclass
class Config:
    url: str
    secret: str
    timeout: float = 10.0

    @classmethod
    def from_env(cls) -> Config | None:
        url = os.environ.get("KOOMSG_WEBHOOK_URL")
        if not url:
            return None
        return cls(url=url, secret=os.environ.get("KOOMSG_WEBHOOK_SECRET", ""))


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def as_json(event: MessageEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "messageId": event.message_id,
        "taskId": event.task_id,
        "enterpriseId": event.enterprise_id,
        "status": event.status,
        "occurredAt": event.occurred_at.isoformat() if event.occurred_at else None,
        "detail": event.detail,
    }


@dataclass
class Poster:
    """One buffer and flusher per event loop (koomsg runs one loop per worker process)."""

    config: Config
    pending: list[dict[str, Any]] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None

    def add(self, event: MessageEvent) -> None:
        self.pending.append(as_json(event))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(0 if len(self.pending) >= BATCH_SIZE else FLUSH_SECONDS)
        while self.pending:
            batch, self.pending = self.pending[:BATCH_SIZE], self.pending[BATCH_SIZE:]
            await self.post(batch)

    async def post(self, batch: list[dict[str, Any]]) -> None:
        body = json.dumps({"events": batch}, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Koomsg-Signature": signature(self.config.secret, body),
        }
        async with httpx.AsyncClient(timeout=self.config.timeout) as client:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    response = await client.post(self.config.url, content=body, headers=headers)
                    if response.status_code < 300:
                        return
                    problem = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                if attempt < ATTEMPTS:
                    await asyncio.sleep(0.5 * 2**attempt)
        log.warning(
            "dropped %d webhook events after %d attempts: %s", len(batch), ATTEMPTS, problem
        )


_posters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Poster] = weakref.WeakKeyDictionary()


def poster(config: Config) -> Poster:
    loop = asyncio.get_running_loop()
    found = _posters.get(loop)
    if found is None or found.config != config:
        found = _posters[loop] = Poster(config)
    return found


@hookimpl
async def koomsg_message_event(event: MessageEvent) -> None:
    config = Config.from_env()
    if config is not None:
        poster(config).add(event)


async def flush() -> None:
    """Send what is buffered now (tests, shutdown)."""
    found = _posters.get(asyncio.get_running_loop())
    if found is not None and found.flusher is not None:
        await found.flusher
