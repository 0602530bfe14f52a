"""Building wire bytes: render, instrument links, fill the MIME skeleton, DKIM-sign.

Big batches are built in helper processes (``KOOMSG_BUILD_PROCESSES``): RSA
signing holds the GIL, so threads would not help. A message that cannot be
built comes back as the text of its error and never sinks its batch.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from koomsg.config import Settings
from koomsg.core.delivery.content import Content
from koomsg.core.delivery.models import Message
from koomsg.core.domains.dkim import sign
from koomsg.core.tracking.links import instrument_html, link_base, unsubscribe_url
from koomsg.plugins.types import Envelope

log = logging.getLogger(__name__)


def build_envelope(settings: Settings, content: Content, message: Message) -> Envelope:
    return _envelope(
        settings, content, message.id, message.recipient, message.subject, message.params
    )


def _envelope(
    settings: Settings,
    content: Content,
    message_id: str,
    recipient: str,
    subject: str,
    params: Mapping[str, Any] | None,
) -> Envelope:
    base = link_base(settings, content.sender_domain)
    unsubscribe = (
        unsubscribe_url(settings, base, message_id)
        if content.compiled.support_unsubscribe
        else None
    )
    parts = content.compiled.render(params or {}, unsubscribe_url=unsubscribe)
    html = (
        instrument_html(settings, base, message_id, parts.html) if parts.html is not None else None
    )
    data = content.skeleton.fill(
        message_id=message_id,
        sender_domain=content.sender_domain,
        to=recipient,
        subject=subject,
        text=parts.text,
        html=html,
        unsubscribe_url=unsubscribe,
    )
    key = content.signing_key
    assert key is not None
    signature = sign(
        data, domain=key.domain, selector=key.selector, private_key_pem=key.private_key_pem
    )
    return Envelope(
        message_id=message_id,
        enterprise_id=content.enterprise_id,
        mail_from=content.sender_address,
        recipients=[recipient],
        data=signature + data,
        rfc_message_id=f"<{message_id}@{content.sender_domain}>",
    )


# An envelope, or why it could not be built.
Built = Envelope | str
BuildRow = tuple[str, str, str, Mapping[str, Any] | None]


def _build_rows(settings: Settings, content: Content, rows: Sequence[BuildRow]) -> list[Built]:
    """Runs in a build process (or inline): a message that cannot be built must not sink
    the batch, so its error comes back as text."""
    built: list[Built] = []
    for message_id, recipient, subject, params in rows:
        try:
            built.append(_envelope(settings, content, message_id, recipient, subject, params))
        except Exception as exc:
            log.debug("message %s could not be built", message_id, exc_info=True)
            built.append(f"{type(exc).__name__}: {exc}")
    return built


# Below this a batch is built inline: shipping it to a build process costs more than it saves.
BUILD_POOL_MIN_BATCH = 64
# Messages per hand-off to a build process: sending starts as soon as the first part is back.
BUILD_CHUNK = 50
# Messages built inline between two yields to the event loop (about 10 ms of signing).
INLINE_CHUNK = 20
_pool_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def build_pool(settings: Settings) -> ProcessPoolExecutor | None:
    global _pool
    if settings.build_processes <= 0:
        return None
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: this process runs threads (dramatiq's, aiosqlite's).
            _pool = ProcessPoolExecutor(
                settings.build_processes, mp_context=multiprocessing.get_context("spawn")
            )
        return _pool


def _discard_pool(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _pool_lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


async def build_envelopes(
    settings: Settings,
    content: Content,
    messages: Sequence[Message],
    pool: ProcessPoolExecutor | None,
) -> list[Built]:
    rows = [(m.id, m.recipient, m.subject, m.params) for m in messages]
    if pool is not None:
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, _build_rows, settings, content, rows
            )
        except BrokenProcessPool:
            # A build process died (OOM killer, say): build here, a fresh pool next time.
            log.warning("a message build process died; building in the worker instead")
            _discard_pool(pool)
    return _build_rows(settings, content, rows)
