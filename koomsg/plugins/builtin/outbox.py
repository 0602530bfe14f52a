"""The ``outbox`` transport: each message becomes one ``.eml`` file.

The embedded default. Files appear atomically (written aside, then renamed),
named after the koomsg message id, so a retried message overwrites itself
instead of producing a second file.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from koomsg.config import Settings
from koomsg.core.clock import utcnow
from koomsg.plugins import hookimpl
from koomsg.plugins.types import DeliveryResult, DeliveryStatus, Envelope, Transport


class OutboxTransport:
    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write(self, envelope: Envelope) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{envelope.message_id}.eml"
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(envelope.data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def send(self, envelope: Envelope) -> DeliveryResult:
        try:
            await asyncio.to_thread(self._write, envelope)
        except OSError as exc:
            # A full or read-only disk may clear up; let the retry schedule handle it.
            return DeliveryResult.temporary(f"451 outbox not writable: {exc.strerror}")
        return DeliveryResult(DeliveryStatus.ACCEPTED, "250 written to outbox", 250, utcnow())

    async def close(self) -> None:
        return None


@hookimpl
def koomsg_transports(settings: Settings) -> Sequence[Transport]:
    return [OutboxTransport(settings.outbox_dir)]
